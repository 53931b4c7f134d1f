"""The AWS SDK for JavaScript v3 (`tests/js`, installed by `make js` with npm from the pinned lock
file) against the server: objects with metadata and checksums, lib-storage multipart and
streamed uploads, ranges, copy, tags, lifecycle rules, presigned GET and PUT, listing and bulk
delete. What the script leaves behind is read back here with boto3."""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from support.server import direct_env

JS_DIR = Path(__file__).resolve().parent.parent / "js"


def test_js_sdk_v3(server, s3, bucket):
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (JS_DIR / "node_modules" / "@aws-sdk" / "client-s3").is_dir(), "run `make js` (npm ci in tests/js)"
    env = direct_env()
    cp = subprocess.run(
        [node, "--no-warnings", "s3_client.mjs", server.endpoint, server.access_key, server.secret_key, bucket],
        cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert cp.returncode == 0, f"{cp.stdout}\n{cp.stderr}"
    left = json.loads(cp.stdout.strip().splitlines()[-1])
    for key, digest in left.items():
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, key
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(left), keys
