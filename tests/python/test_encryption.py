"""Server-side encryption (issue 7): SSE-S3, SSE-KMS through the `local-kms` key provider,
SSE-C, bucket default encryption, range reads across segment boundaries, multipart, copies
between modes, key rotation/disable/deletion, and a scan of the data dir proving a known
plaintext never reaches the disk."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from support.plugins import DIST, plugin_entry, plugin_server
from support.util import expect_error

LOCAL_KMS = DIST / "local_kms.wasm"
SEGMENT = 64 * 1024


def kms_server(start_server, **kw):
    return plugin_server(start_server, plugin_entry("local-kms", LOCAL_KMS, world="key-provider"), **kw)


@pytest.fixture
def kms(start_server):
    return kms_server(start_server)


def customer_key(seed: bytes = b"k") -> dict:
    key = hashlib.sha256(seed).digest()
    return {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": key,  # boto3 base64-encodes it and adds the MD5
    }


def pattern(n: int, salt: int = 0) -> bytes:
    """Deterministic bytes that differ per offset (so misplaced segments show)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{salt}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def test_sse_s3_round_trip_headers_and_plaintext_etag(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-b")
    body = pattern(3 * SEGMENT + 100)
    r = s3.put_object(Bucket="enc-b", Key="k", Body=body, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    # SSE-S3 keeps the plaintext MD5 as ETag, as on AWS.
    assert r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    g = s3.get_object(Bucket="enc-b", Key="k")
    assert g["ServerSideEncryption"] == "AES256"
    assert g["Body"].read() == body
    h = s3.head_object(Bucket="enc-b", Key="k")
    assert h["ServerSideEncryption"] == "AES256" and h["ContentLength"] == len(body)


@pytest.mark.parametrize("start, end", [
    (0, 0), (SEGMENT - 1, SEGMENT), (SEGMENT, 2 * SEGMENT - 1), (100, 3 * SEGMENT + 50),
    (3 * SEGMENT, 3 * SEGMENT + 99), (2 * SEGMENT + 7, 2 * SEGMENT + 7),
])
def test_range_reads_across_segment_boundaries(kms, start, end):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-r")
    body = pattern(3 * SEGMENT + 100, salt=1)
    ck = customer_key()
    s3.put_object(Bucket="enc-r", Key="s3", Body=body, ServerSideEncryption="AES256")
    s3.put_object(Bucket="enc-r", Key="kms", Body=body, ServerSideEncryption="aws:kms")
    s3.put_object(Bucket="enc-r", Key="c", Body=body, **ck)
    for key, extra in [("s3", {}), ("kms", {}), ("c", ck)]:
        got = s3.get_object(Bucket="enc-r", Key=key, Range=f"bytes={start}-{end}", **extra)
        assert got["Body"].read() == body[start:end + 1], key
        assert got["ContentRange"] == f"bytes {start}-{end}/{len(body)}"
    # Suffix range too.
    got = s3.get_object(Bucket="enc-r", Key="kms", Range="bytes=-70000")
    assert got["Body"].read() == body[-70000:]


def test_sse_kms_headers_context_and_opaque_etag(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-k")
    body = b"kms body" * 1000
    ctx = base64.b64encode(json.dumps({"project": "x"}).encode()).decode()
    r = s3.put_object(Bucket="enc-k", Key="a", Body=body, ServerSideEncryption="aws:kms",
                      SSEKMSEncryptionContext=ctx)
    assert r["ServerSideEncryption"] == "aws:kms"
    arn = r["SSEKMSKeyId"]
    assert arn.startswith("arn:aws:kms:") and ":key/" in arn
    assert json.loads(base64.b64decode(r["SSEKMSEncryptionContext"])) == {"project": "x"}
    # Dual-layer KMS is answered as asked.
    d = s3.put_object(Bucket="enc-k", Key="dsse", Body=b"d", ServerSideEncryption="aws:kms:dsse")
    assert d["ServerSideEncryption"] == "aws:kms:dsse"
    assert s3.head_object(Bucket="enc-k", Key="dsse")["ServerSideEncryption"] == "aws:kms:dsse"
    assert r["ETag"] != f'"{hashlib.md5(body).hexdigest()}"'  # not the plaintext MD5
    g = s3.get_object(Bucket="enc-k", Key="a")
    assert g["Body"].read() == body and g["SSEKMSKeyId"] == arn
    # A named key.
    key = kms.kms_json("create", "--description", "app key")
    r = s3.put_object(Bucket="enc-k", Key="b", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=key["key_id"])
    assert r["SSEKMSKeyId"] == key["arn"]
    assert s3.get_object(Bucket="enc-k", Key="b")["Body"].read() == b"x"
    expect_error(400, "KMS.NotFoundException", s3.put_object, Bucket="enc-k", Key="c", Body=b"x",
                 ServerSideEncryption="aws:kms", SSEKMSKeyId="no-such-key")


def test_sse_c_needs_the_key_and_refuses_a_wrong_one(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-c")
    ck = customer_key(b"right")
    body = pattern(SEGMENT * 2 + 3, salt=2)
    r = s3.put_object(Bucket="enc-c", Key="k", Body=body, **ck)
    assert r["SSECustomerAlgorithm"] == "AES256"
    md5 = base64.b64encode(hashlib.md5(ck["SSECustomerKey"]).digest()).decode()
    assert r["SSECustomerKeyMD5"] == md5
    assert r["ETag"] != f'"{hashlib.md5(body).hexdigest()}"'
    assert s3.get_object(Bucket="enc-c", Key="k", **ck)["Body"].read() == body
    assert s3.head_object(Bucket="enc-c", Key="k", **ck)["SSECustomerKeyMD5"] == md5
    expect_error(400, "InvalidRequest", s3.get_object, Bucket="enc-c", Key="k")
    expect_error(400, None, s3.head_object, Bucket="enc-c", Key="k")
    expect_error(403, "AccessDenied", s3.get_object, Bucket="enc-c", Key="k", **customer_key(b"wrong"))
    # SSE-C headers on an object that is not SSE-C.
    s3.put_object(Bucket="enc-c", Key="plain", Body=b"p")
    expect_error(400, "InvalidRequest", s3.get_object, Bucket="enc-c", Key="plain", **ck)
    # A key MD5 that does not match the key.
    raw = kms.raw()
    key = hashlib.sha256(b"right").digest()
    resp = raw.request("PUT", "/enc-c/bad-md5", body=b"x", headers={
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(b"0" * 16).decode(),
    })
    assert resp.status == 400 and b"InvalidArgument" in resp.body


def test_sse_c_object_attributes_need_the_key(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-attrs")
    ck = customer_key(b"attrs")
    s3.put_object(Bucket="enc-attrs", Key="k", Body=pattern(1000), **ck)
    expect_error(400, None, s3.get_object_attributes, Bucket="enc-attrs", Key="k",
                 ObjectAttributes=["ObjectSize"])
    # botocore leaves this operation's key to the caller to encode, MD5 included.
    key = ck["SSECustomerKey"]
    encoded = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(key).decode(),
               "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode()}
    r = s3.get_object_attributes(Bucket="enc-attrs", Key="k", ObjectAttributes=["ObjectSize", "ETag"], **encoded)
    assert r["ObjectSize"] == 1000
    assert r["ETag"] == s3.head_object(Bucket="enc-attrs", Key="k", **ck)["ETag"].strip('"')


def test_bad_sse_requests(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="bad")
    raw = kms.raw()
    r = raw.request("PUT", "/bad/k", body=b"x", headers={"x-amz-server-side-encryption": "DES"})
    assert r.status == 400 and b"InvalidArgument" in r.body
    r = raw.request("PUT", "/bad/k", body=b"x", headers={
        "x-amz-server-side-encryption": "AES256",
        "x-amz-server-side-encryption-aws-kms-key-id": "x"})
    assert r.status == 400 and b"InvalidArgument" in r.body
    r = raw.request("GET", "/bad/k", headers={"x-amz-server-side-encryption": "AES256"})
    assert r.status == 400
    assert s3.list_objects_v2(Bucket="bad").get("KeyCount") == 0  # nothing was stored


def test_bucket_default_encryption(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-d")
    expect_error(404, "ServerSideEncryptionConfigurationNotFoundError",
                 s3.get_bucket_encryption, Bucket="enc-d")
    s3.put_bucket_encryption(Bucket="enc-d", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]})
    got = s3.get_bucket_encryption(Bucket="enc-d")["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert got["BucketKeyEnabled"] is True
    r = s3.put_object(Bucket="enc-d", Key="k", Body=b"default")
    assert r["ServerSideEncryption"] == "aws:kms" and r["BucketKeyEnabled"] is True
    assert s3.head_object(Bucket="enc-d", Key="k")["ServerSideEncryption"] == "aws:kms"
    # A request's own header wins over the default.
    assert s3.put_object(Bucket="enc-d", Key="s3", Body=b"x",
                         ServerSideEncryption="AES256")["ServerSideEncryption"] == "AES256"
    s3.delete_bucket_encryption(Bucket="enc-d")
    assert "ServerSideEncryption" not in s3.put_object(Bucket="enc-d", Key="p", Body=b"x")
    expect_error(400, "MalformedXML", s3.put_bucket_encryption, Bucket="enc-d",
                 ServerSideEncryptionConfiguration={"Rules": [
                     {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "ROT13"}}]})


def test_bucket_policy_can_require_encryption(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="req")
    user = kms.admin_json("user", "create", "writer")
    s3.put_bucket_policy(Bucket="req", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AllowWriter", "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::sluice:user/writer"]},
         "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::req/*"},
        {"Sid": "RequireKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::req/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
    ]}))
    w = kms.client(user["access_key"], user["secret_key"])
    expect_error(403, "AccessDenied", w.put_object, Bucket="req", Key="plain", Body=b"x")
    expect_error(403, "AccessDenied", w.put_object, Bucket="req", Key="s3", Body=b"x",
                 ServerSideEncryption="AES256")
    w.put_object(Bucket="req", Key="kms", Body=b"x", ServerSideEncryption="aws:kms")
    assert w.get_object(Bucket="req", Key="kms")["Body"].read() == b"x"


def test_bucket_policy_can_require_customer_keys(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="req-c")
    user = kms.admin_json("user", "create", "c-writer")
    s3.put_bucket_policy(Bucket="req-c", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::sluice:user/c-writer"]},
         "Action": "s3:PutObject", "Resource": "arn:aws:s3:::req-c/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::req-c/*",
         "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "true"}}},
    ]}))
    w = kms.client(user["access_key"], user["secret_key"])
    expect_error(403, "AccessDenied", w.put_object, Bucket="req-c", Key="plain", Body=b"x")
    w.put_object(Bucket="req-c", Key="sealed", Body=b"x", **customer_key(b"c"))
    assert s3.get_object(Bucket="req-c", Key="sealed", **customer_key(b"c"))["Body"].read() == b"x"


def test_multipart_with_sse_kms_and_sse_c(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-mp")
    part = 5 * 1024 * 1024
    body = pattern(2 * part + 12345, salt=3)
    for key, extra in [("kms", {"ServerSideEncryption": "aws:kms"}), ("c", customer_key(b"mp"))]:
        up = s3.create_multipart_upload(Bucket="enc-mp", Key=key, **extra)
        part_extra = {k: v for k, v in extra.items() if k.startswith("SSECustomer")}
        etags = []
        for n, start in enumerate(range(0, len(body), part), start=1):
            chunk = body[start:start + part]
            if n == 2:  # a part uploaded twice gets a fresh nonce prefix; the last one counts
                s3.upload_part(Bucket="enc-mp", Key=key, UploadId=up["UploadId"], PartNumber=n,
                               Body=b"z" * len(chunk), **part_extra)
            r = s3.upload_part(Bucket="enc-mp", Key=key, UploadId=up["UploadId"], PartNumber=n,
                               Body=chunk, **part_extra)
            etags.append({"PartNumber": n, "ETag": r["ETag"]})
        if part_extra:
            expect_error(400, "InvalidRequest", s3.upload_part, Bucket="enc-mp", Key=key,
                         UploadId=up["UploadId"], PartNumber=9, Body=b"x")
        s3.complete_multipart_upload(Bucket="enc-mp", Key=key, UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": etags})
        got = s3.get_object(Bucket="enc-mp", Key=key, **part_extra)
        assert got["Body"].read() == body
        # A range that spans the part boundary.
        r = s3.get_object(Bucket="enc-mp", Key=key, Range=f"bytes={part - 10}-{part + 70000}", **part_extra)
        assert r["Body"].read() == body[part - 10:part + 70001]
        assert s3.get_object(Bucket="enc-mp", Key=key, PartNumber=2, **part_extra)["Body"].read() \
            == body[part:2 * part]


def test_copy_between_sse_modes(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-cp")
    body = pattern(SEGMENT + 1, salt=4)
    c1, c2 = customer_key(b"one"), customer_key(b"two")
    s3.put_object(Bucket="enc-cp", Key="plain", Body=body)
    # plain -> SSE-S3 -> SSE-KMS -> SSE-C -> SSE-C (another key) -> plain
    s3.copy_object(Bucket="enc-cp", Key="s3", CopySource="enc-cp/plain", ServerSideEncryption="AES256")
    r = s3.copy_object(Bucket="enc-cp", Key="kms", CopySource="enc-cp/s3", ServerSideEncryption="aws:kms")
    assert r["ServerSideEncryption"] == "aws:kms"
    s3.copy_object(Bucket="enc-cp", Key="c", CopySource="enc-cp/kms", **c1)
    s3.copy_object(Bucket="enc-cp", Key="c2", CopySource="enc-cp/c", **c2,
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=c1["SSECustomerKey"])
    expect_error(400, "InvalidRequest", s3.copy_object, Bucket="enc-cp", Key="x", CopySource="enc-cp/c2")
    s3.copy_object(Bucket="enc-cp", Key="back", CopySource="enc-cp/c2",
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=c2["SSECustomerKey"])
    assert s3.get_object(Bucket="enc-cp", Key="s3")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="enc-cp", Key="kms")["Body"].read() == body
    assert s3.get_object(Bucket="enc-cp", Key="c2", **c2)["Body"].read() == body
    back = s3.get_object(Bucket="enc-cp", Key="back")
    # A copy of an encrypted source that asks for nothing is SSE-S3, never plaintext on disk.
    assert back["Body"].read() == body and back["ServerSideEncryption"] == "AES256"
    plain_copy = s3.copy_object(Bucket="enc-cp", Key="plain-copy", CopySource="enc-cp/plain")
    assert "ServerSideEncryption" not in plain_copy
    # UploadPartCopy of an encrypted source into an unencrypted upload would store plaintext.
    up = s3.create_multipart_upload(Bucket="enc-cp", Key="mp")
    expect_error(400, "InvalidRequest", s3.upload_part_copy, Bucket="enc-cp", Key="mp",
                 UploadId=up["UploadId"], PartNumber=1, CopySource="enc-cp/s3")
    up = s3.create_multipart_upload(Bucket="enc-cp", Key="mp2", ServerSideEncryption="aws:kms")
    r = s3.upload_part_copy(Bucket="enc-cp", Key="mp2", UploadId=up["UploadId"], PartNumber=1,
                            CopySource="enc-cp/s3")
    s3.complete_multipart_upload(Bucket="enc-cp", Key="mp2", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="enc-cp", Key="mp2")["Body"].read() == body
    # Re-encrypting an object in place is allowed (it changes the encryption).
    s3.copy_object(Bucket="enc-cp", Key="plain", CopySource="enc-cp/plain", ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket="enc-cp", Key="plain")["ServerSideEncryption"] == "aws:kms"


def test_rotation_keeps_old_objects_readable_and_disable_blocks_reads(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="rot")
    key = kms.kms_json("create", "--description", "rotating")
    kid = key["key_id"]
    s3.put_object(Bucket="rot", Key="old", Body=b"v1", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    rotated = kms.kms_json("rotate", kid)
    assert rotated["versions"] == 2
    s3.put_object(Bucket="rot", Key="new", Body=b"v2", ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    assert s3.get_object(Bucket="rot", Key="old")["Body"].read() == b"v1"
    assert s3.get_object(Bucket="rot", Key="new")["Body"].read() == b"v2"
    assert kms.kms_json("disable", kid)["state"] == "disabled"
    expect_error(400, "KMS.DisabledException", s3.get_object, Bucket="rot", Key="old")
    expect_error(400, "KMS.DisabledException", s3.put_object, Bucket="rot", Key="x", Body=b"x",
                 ServerSideEncryption="aws:kms", SSEKMSKeyId=kid)
    assert kms.kms_json("enable", kid)["state"] == "enabled"
    assert s3.get_object(Bucket="rot", Key="old")["Body"].read() == b"v1"
    # Deletion waits out a 7..30 day window and can be cancelled (the key comes back disabled).
    assert kms.kms("schedule-deletion", kid, "--days", "3", check=False).returncode != 0
    pending = kms.kms_json("schedule-deletion", kid, "--days", "7")
    assert pending["state"] == "pending-deletion" and pending["deletion_date"] > 0
    expect_error(400, "KMS.KMSInvalidStateException", s3.get_object, Bucket="rot", Key="old")
    assert kms.kms_json("cancel-deletion", kid)["state"] == "disabled"
    kms.kms_json("enable", kid)
    assert s3.get_object(Bucket="rot", Key="new")["Body"].read() == b"v2"
    listed = {k["key_id"]: k for k in kms.kms_json("list")}
    assert kid in listed and listed[kid]["versions"] == 2
    assert kms.kms_json("describe", kid)["arn"] == key["arn"]


def test_kms_keys_survive_restart_and_offline_cli(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-rs")
    s3.put_object(Bucket="enc-rs", Key="k", Body=b"persist", ServerSideEncryption="aws:kms")
    kms.stop()
    # Offline: the CLI opens the data dir and the same plugin.
    offline = kms.kms_json("list", endpoint=False)
    assert any(k["description"] == "Default key for SSE-KMS" for k in offline)
    kms.start()
    assert kms.client().get_object(Bucket="enc-rs", Key="k")["Body"].read() == b"persist"


def test_no_plaintext_reaches_the_disk(kms):
    s3 = kms.client()
    s3.create_bucket(Bucket="scan")
    marker = b"SLUICE-PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()
    small = marker * 3
    big = (marker + pattern(977, salt=5)) * 400  # ~400 KiB: a body file, several segments
    ck = customer_key(b"scan")
    s3.put_object(Bucket="scan", Key="s3-small", Body=small, ServerSideEncryption="AES256")
    s3.put_object(Bucket="scan", Key="kms-big", Body=big, ServerSideEncryption="aws:kms")
    s3.put_object(Bucket="scan", Key="c-big", Body=big, **ck)
    s3.copy_object(Bucket="scan", Key="copied", CopySource="scan/kms-big", ServerSideEncryption="AES256")
    # A multipart upload left open (part files) and one completed.
    part = (marker + pattern(1000, salt=6)) * 5300  # > 5 MiB
    for key, done in [("open-upload", False), ("done-upload", True)]:
        up = s3.create_multipart_upload(Bucket="scan", Key=key, ServerSideEncryption="aws:kms")
        r = s3.upload_part(Bucket="scan", Key=key, UploadId=up["UploadId"], PartNumber=1, Body=part)
        if done:
            s3.complete_multipart_upload(Bucket="scan", Key=key, UploadId=up["UploadId"],
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    s3.put_bucket_encryption(Bucket="scan", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_object(Bucket="scan", Key="by-default", Body=big)
    # Control: an unencrypted object's marker is found by the same scan.
    control = b"SLUICE-CONTROL-MARKER-" + os.urandom(8).hex().encode()
    s3.create_bucket(Bucket="control")
    s3.put_object(Bucket="control", Key="plain", Body=control * 5000)
    assert s3.get_object(Bucket="scan", Key="kms-big")["Body"].read() == big
    # IAM secrets are sealed at rest too.
    user = kms.admin_json("user", "create", "scanned")
    secret = user["secret_key"].encode()
    kms.stop()  # everything flushed
    needles = [marker, marker[:16], marker[-16:], secret]
    scanned = 0
    control_found = False
    for path in Path(kms.data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += len(data)
            control_found |= control in data
            for n in needles:
                assert n not in data, f"plaintext found in {path}"
    assert scanned > 5 * 1024 * 1024  # the bodies really were on disk
    assert control_found, "the scan must be able to find plaintext"
    # The master key file and the config are outside the data dir; the marker is not there either.
    for path in Path(kms.root).glob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), path


def open_envelope_in_python(blob: bytes, data_key: bytes) -> bytes:
    """An independent reader of the documented envelope format (README, "Client-side
    encryption"), with the `cryptography` package: proves the format is what the docs say."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    import struct

    assert blob[:18] == b"SLUICE-ENVELOPE-1\n"
    (hlen,) = struct.unpack(">I", blob[18:22])
    header = json.loads(blob[22:22 + hlen])
    body = blob[22 + hlen:]
    binding = bytes.fromhex(header["binding"])
    prefix = bytes.fromhex(header["nonce_prefix"])
    size = header["size"]
    count = max(1, -(-size // SEGMENT))
    aead = AESGCM(data_key)
    out = bytearray()
    pos = 0
    for i in range(count):
        plain_len = min(SEGMENT, size - i * SEGMENT)
        sealed = body[pos:pos + plain_len + 16]
        pos += plain_len + 16
        aad = b"slc1" + binding + struct.pack(">I", 0) + struct.pack(">I", i) + bytes([i == count - 1])
        out += aead.decrypt(prefix + struct.pack(">I", i), sealed, aad)
    assert pos == len(body)
    return bytes(out)


def test_client_side_envelope_encryption(kms, tmp_path):
    data = pattern(3 * SEGMENT + 5, salt=7)
    src, enc, back = tmp_path / "in.bin", tmp_path / "in.bin.slc", tmp_path / "back.bin"
    src.write_bytes(data)
    key = kms.kms_json("create", "--description", "client side")
    kms.cli("encrypt", str(src), "-o", str(enc), "--key-id", key["key_id"],
            "--context", '{"file": "in.bin"}')
    blob = enc.read_bytes()
    assert blob.startswith(b"SLUICE-ENVELOPE-1\n") and data[:64] not in blob
    kms.cli("decrypt", str(enc), "-o", str(back))
    assert back.read_bytes() == data
    # The documented format, read independently with the data key the KMS API unwraps.
    header = json.loads(blob[22:22 + int.from_bytes(blob[18:22], "big")])
    assert header["key_id"] == key["arn"] and header["context"] == [["file", "in.bin"]]
    r = kms.raw().request("POST", "/_sluice/admin/v1/kms", body=json.dumps({
        "command": "decrypt", "key_id": header["key_id"], "wrapped": header["wrapped_key"],
        "context": header["context"]}).encode())
    assert r.status == 200, r.body
    data_key = base64.b64decode(json.loads(r.body)["plaintext"])
    assert open_envelope_in_python(blob, data_key) == data
    # A flipped bit fails and leaves no output.
    bad = bytearray(blob)
    bad[-100] ^= 1
    (tmp_path / "bad.slc").write_bytes(bytes(bad))
    cp = kms.cli("decrypt", str(tmp_path / "bad.slc"), "-o", str(tmp_path / "bad.out"), check=False)
    assert cp.returncode != 0 and not (tmp_path / "bad.out").exists()
    # Offline (stopped server, its data dir): the same file still decrypts.
    kms.stop()
    back.unlink()
    kms.cli("decrypt", str(enc), "-o", str(back), endpoint=False)
    assert back.read_bytes() == data


def test_kms_admin_needs_kms_permission(kms):
    user = kms.admin_json("user", "create", "nokms")
    r = kms.raw(user["access_key"], user["secret_key"]).request(
        "POST", "/_sluice/admin/v1/kms", body=b'{"command": "create", "description": "x"}')
    assert r.status == 403 and b"AccessDenied" in r.body
    r = kms.raw().request("POST", "/_sluice/admin/v1/kms", body=b'{"command": "explode"}')
    assert r.status == 400
    cp = kms.kms("schedule-deletion", "alias/aws/s3", "--days", "3", check=False)
    assert cp.returncode != 0 and "7 to 30" in cp.stderr


def test_aws_cli_with_each_sse_mode(kms, tmp_path):
    import subprocess
    from support.server import base_env
    from test_awscli import aws_executable

    home = tmp_path / "aws-home"
    home.mkdir()
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {kms.access_key}\naws_secret_access_key = {kms.secret_key}\n")
    (home / "config").write_text(
        "[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n"
        "  addressing_style = path\n")
    env = {**base_env(), "HOME": str(home), "AWS_CONFIG_FILE": str(home / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_PAGER": "",
           "AWS_EC2_METADATA_DISABLED": "true"}

    def aws(*args):
        cp = subprocess.run([aws_executable(), *args, "--endpoint-url", kms.endpoint], env=env,
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, f"{args}: {cp.stdout}\n{cp.stderr}"
        return cp.stdout

    aws("s3", "mb", "s3://cli-enc")
    src = tmp_path / "src.bin"
    data = pattern(11 * 1024 * 1024 + 17, salt=8)  # multipart through the CLI (5 MiB parts)
    src.write_bytes(data)
    sse_c_key = "k" * 32
    modes = {
        "s3": ["--sse", "AES256"],
        "kms": ["--sse", "aws:kms"],
        "c": ["--sse-c", "AES256", "--sse-c-key", sse_c_key],
    }
    s3 = kms.client()
    for name, flags in modes.items():
        aws("s3", "cp", str(src), f"s3://cli-enc/{name}", *flags)
        back = tmp_path / f"back-{name}"
        aws("s3", "cp", f"s3://cli-enc/{name}", str(back),
            *(["--sse-c", "AES256", "--sse-c-key", sse_c_key] if name == "c" else []))
        assert back.read_bytes() == data, name
    assert s3.head_object(Bucket="cli-enc", Key="s3")["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket="cli-enc", Key="kms")["ServerSideEncryption"] == "aws:kms"
    head = json.loads(aws("s3api", "head-object", "--bucket", "cli-enc", "--key", "c",
                          "--sse-customer-algorithm", "AES256", "--sse-customer-key", sse_c_key))
    assert head["SSECustomerAlgorithm"] == "AES256" and head["ContentLength"] == len(data)
    # Bucket default encryption through s3api.
    aws("s3api", "put-bucket-encryption", "--bucket", "cli-enc", "--server-side-encryption-configuration",
        json.dumps({"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}))
    got = json.loads(aws("s3api", "get-bucket-encryption", "--bucket", "cli-enc"))
    assert got["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "AES256"


def test_sse_kms_needs_the_kms_permission(kms, tmp_path):
    user = kms.admin_json("user", "create", "kmsuser")
    c = kms.client(user["access_key"], user["secret_key"])
    c.create_bucket(Bucket="enc-own")  # the owner has full S3 control of it
    # default.cedar lets signed-in users use keys for SSE-KMS.
    c.put_object(Bucket="enc-own", Key="k", Body=b"x", ServerSideEncryption="aws:kms")
    assert c.get_object(Bucket="enc-own", Key="k")["Body"].read() == b"x"
    pol = tmp_path / "no-kms.cedar"
    pol.write_text('forbid (principal, action in [Sluice::Action::"kms:Decrypt", '
                   'Sluice::Action::"kms:GenerateDataKey"], resource);\n')
    kms.admin("policy", "attach", "--user", "kmsuser", "--name", "no-kms", str(pol))
    expect_error(403, "AccessDenied", c.get_object, Bucket="enc-own", Key="k")
    expect_error(403, "AccessDenied", c.put_object, Bucket="enc-own", Key="k2", Body=b"x",
                 ServerSideEncryption="aws:kms")
    # SSE-S3 and SSE-C need no KMS permission; root still reads the KMS object.
    c.put_object(Bucket="enc-own", Key="s3", Body=b"y", ServerSideEncryption="AES256")
    assert c.get_object(Bucket="enc-own", Key="s3")["Body"].read() == b"y"
    assert kms.client().get_object(Bucket="enc-own", Key="k")["Body"].read() == b"x"


def test_range_reads_open_only_the_segments_they_touch(kms):
    """Damage one sealed segment on disk: a range that does not touch it still reads, the whole
    object fails (never returns wrong bytes), and so does a range that touches it."""
    s3 = kms.client()
    s3.create_bucket(Bucket="enc-seg")
    body = pattern(4 * SEGMENT, salt=9)
    s3.put_object(Bucket="enc-seg", Key="k", Body=body, ServerSideEncryption="AES256")
    files = [p for p in (Path(kms.data_dir) / "objects").rglob("*") if p.is_file()]
    assert len(files) == 1, files
    sealed = bytearray(files[0].read_bytes())
    assert len(sealed) == 4 * (SEGMENT + 16)
    sealed[10] ^= 0x01  # inside segment 0
    files[0].write_bytes(bytes(sealed))
    got = s3.get_object(Bucket="enc-seg", Key="k", Range=f"bytes={2 * SEGMENT}-{3 * SEGMENT + 99}")
    assert got["Body"].read() == body[2 * SEGMENT:3 * SEGMENT + 100]
    for extra in ({}, {"Range": "bytes=5-20"}):
        try:
            data = s3.get_object(Bucket="enc-seg", Key="k", **extra)["Body"].read()
        except Exception:
            continue  # the damaged segment ended the response: nothing wrong was served
        pytest.fail(f"a damaged segment was served ({len(data)} bytes, {extra})")
