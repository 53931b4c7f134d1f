"""Small helpers shared by the test modules."""

from __future__ import annotations

import hashlib
import random
import uuid

from botocore.exceptions import ClientError


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def content_for(seed: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes derived from `seed` (so a key tells its content)."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    return rng.randbytes(size)


def client_error(fn, *args, **kwargs) -> ClientError:
    try:
        result = fn(*args, **kwargs)
    except ClientError as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)} succeeded but an error was expected: {result!r}")


def expect_error(status: int, code: str | set[str] | None, fn, *args, **kwargs) -> ClientError:
    """Call a boto3 operation that must fail with this HTTP status and S3 error code."""
    e = client_error(fn, *args, **kwargs)
    got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
    got_code = e.response["Error"].get("Code")
    codes = {code} if isinstance(code, str) else code
    assert got_status == status and (codes is None or got_code in codes), (
        f"expected {status} {codes}, got {got_status} {got_code}: {e.response.get('Error')}"
    )
    return e


def status_of(e: ClientError) -> int:
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def all_versions(client, bucket: str, **kw) -> list[dict]:
    out = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, **kw):
        out += page.get("Versions", []) + page.get("DeleteMarkers", [])
    return out


def empty_and_delete(client, bucket: str) -> None:
    """Remove every object (ListObjectVersions + DeleteObjects), then the bucket itself."""
    try:
        versions = all_versions(client, bucket)
    except ClientError as e:
        if e.response["Error"].get("Code") == "NoSuchBucket":
            return
        raise
    for i in range(0, len(versions), 1000):
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions[i : i + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def list_all_keys(client, bucket: str, **kw) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys
