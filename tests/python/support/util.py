"""Small helpers shared by the test modules."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

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


def let_anyone_put(client, bucket: str, prefix: str) -> None:
    """Open `bucket` to anonymous PutObject under `prefix` (public access block off, a bucket
    policy with Principal "*")."""
    client.delete_public_access_block(Bucket=bucket)
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
                       "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}],
    }))


def list_all_keys(client, bucket: str, **kw) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def venv_tool(name: str) -> str:
    """A command-line tool installed beside the test interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed (pip install -r tests/python/requirements.txt)"
    return found


def tool_runner(prefix: list[str], env: dict[str, str]):
    """`run(*args)` for a client tool: its output captured, a non-zero exit an AssertionError
    (unless check=False)."""

    def run(*args, check=True, timeout=300):
        cp = subprocess.run([*prefix, *args], env=env, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join([Path(prefix[-1]).name, *args])} exited {cp.returncode}\n"
                                 f"{cp.stdout}\n{cp.stderr}")
        return cp

    return run
