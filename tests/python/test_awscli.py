"""Issue item 11: aws-cli against the server: a 100 MiB single-PUT upload and download checked by
sha256, `aws s3 cp/sync/ls/rm/mb/rb` and `aws s3api` calls."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from support.checksums import md5_etag
from support.server import base_env
from support.util import list_all_keys, unique_name, venv_tool

MIB = 1024 * 1024


def aws_executable() -> str:
    return venv_tool("aws")


@pytest.fixture(scope="module")
def aws(server, tmp_path_factory):
    home = tmp_path_factory.mktemp("aws-home")
    env = {
        **base_env(),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {server.access_key}\naws_secret_access_key = {server.secret_key}\n"
    )
    exe = aws_executable()

    def run(*args, check=True, endpoint=True, timeout=300):
        cmd = [exe, *args] + (["--endpoint-url", server.endpoint] if endpoint else [])
        cp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    for setting, value in [
        ("default.region", "us-east-1"),
        ("default.s3.multipart_threshold", "200MB"),
        ("default.s3.addressing_style", "path"),
        ("default.s3.signature_version", "s3v4"),
    ]:
        run("configure", "set", setting, value, endpoint=False)
    assert "multipart_threshold = 200MB" in (home / "config").read_text()
    return run


def write_random_file(path: Path, size: int) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(MIB, left))
            sha.update(chunk)
            md5.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return sha.hexdigest(), '"' + md5.hexdigest() + '"'


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.slow
def test_cp_100_mib_single_put_round_trip(aws, s3, bucket, tmp_path):
    src, out = tmp_path / "big.bin", tmp_path / "big.out"
    sha, etag = write_random_file(src, 100 * MIB)
    try:
        aws("s3", "cp", str(src), f"s3://{bucket}/big/file.bin", "--only-show-errors")
        head = s3.head_object(Bucket=bucket, Key="big/file.bin")
        assert head["ContentLength"] == 100 * MIB
        assert head["ETag"] == etag, "not a single PUT (multipart ETag) or wrong content"
        aws("s3", "cp", f"s3://{bucket}/big/file.bin", str(out), "--only-show-errors")
        assert sha256_file(out) == sha
    finally:
        for p in (src, out):
            p.unlink(missing_ok=True)


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_sync_ls_rm(aws, s3, bucket, tmp_path):
    files = {"a.txt": b"alpha", "sub/b.txt": b"bravo" * 100, "sub/deeper/c.bin": os.urandom(70_000),
             "with space.txt": b"space", "ünï.txt": b"unicode"}
    up = tmp_path / "up"
    make_tree(up, files)
    aws("s3", "sync", str(up), f"s3://{bucket}/tree/", "--only-show-errors")
    assert sorted(list_all_keys(s3, bucket)) == sorted("tree/" + k for k in files)
    for k, data in files.items():
        assert s3.get_object(Bucket=bucket, Key="tree/" + k)["Body"].read() == data

    top = aws("s3", "ls", f"s3://{bucket}/tree/").stdout
    assert "PRE sub/" in top and "a.txt" in top and "c.bin" not in top, top
    recursive = aws("s3", "ls", f"s3://{bucket}/tree/", "--recursive").stdout
    assert all(("tree/" + k) in recursive for k in files), recursive
    assert bucket in aws("s3", "ls").stdout

    (up / "a.txt").write_bytes(b"alpha, changed and longer")
    (up / "sub" / "b.txt").unlink()
    make_tree(up, {"new/d.txt": b"delta"})
    aws("s3", "sync", str(up), f"s3://{bucket}/tree/", "--delete", "--only-show-errors")
    assert s3.get_object(Bucket=bucket, Key="tree/a.txt")["Body"].read() == b"alpha, changed and longer"
    assert "tree/sub/b.txt" not in list_all_keys(s3, bucket)
    assert "tree/new/d.txt" in list_all_keys(s3, bucket)

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{bucket}/tree/", str(down), "--only-show-errors")
    assert read_tree(down) == read_tree(up)

    aws("s3", "rm", f"s3://{bucket}/tree/a.txt", "--only-show-errors")
    assert "tree/a.txt" not in list_all_keys(s3, bucket)
    aws("s3", "rm", f"s3://{bucket}/tree/", "--recursive", "--only-show-errors")
    assert list_all_keys(s3, bucket) == []


def test_mb_cp_rb(aws, s3, tmp_path):
    name = unique_name("cli")
    aws("s3", "mb", f"s3://{name}")
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    src = tmp_path / "f.txt"
    src.write_bytes(b"small file")
    aws("s3", "cp", str(src), f"s3://{name}/f.txt", "--only-show-errors")
    failed = aws("s3", "rb", f"s3://{name}", check=False)
    assert failed.returncode != 0 and "BucketNotEmpty" in failed.stderr, failed
    aws("s3", "rb", f"s3://{name}", "--force")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_s3api_calls(aws, tmp_path):
    name = unique_name("api")
    api = lambda *a, **kw: aws("s3api", *a, **kw)  # noqa: E731
    api("create-bucket", "--bucket", name)
    try:
        api("head-bucket", "--bucket", name)
        assert json.loads(api("get-bucket-location", "--bucket", name).stdout).get("LocationConstraint") in (None, "")
        src = tmp_path / "obj.json"
        src.write_bytes(b'{"hello": "world"}')
        put = json.loads(api("put-object", "--bucket", name, "--key", "docs/obj.json", "--body", str(src),
                             "--content-type", "application/json", "--metadata", "origin=cli").stdout)
        assert put["ETag"] == md5_etag(src.read_bytes())
        head = json.loads(api("head-object", "--bucket", name, "--key", "docs/obj.json").stdout)
        assert head["ContentType"] == "application/json" and head["Metadata"] == {"origin": "cli"}
        assert head["ContentLength"] == src.stat().st_size
        listed = json.loads(api("list-objects-v2", "--bucket", name, "--prefix", "docs/").stdout)
        assert [o["Key"] for o in listed["Contents"]] == ["docs/obj.json"]
        out = tmp_path / "out.json"
        got = json.loads(api("get-object", "--bucket", name, "--key", "docs/obj.json", str(out)).stdout)
        assert got["ContentType"] == "application/json" and out.read_bytes() == src.read_bytes()
        missing = api("get-object", "--bucket", name, "--key", "nope", str(tmp_path / "x"), check=False)
        assert missing.returncode != 0 and "NoSuchKey" in missing.stderr
        api("delete-object", "--bucket", name, "--key", "docs/obj.json")
        assert "Contents" not in json.loads(api("list-objects-v2", "--bucket", name).stdout)
        buckets = json.loads(api("list-buckets").stdout)["Buckets"]
        assert name in [b["Name"] for b in buckets]
    finally:
        api("delete-bucket", "--bucket", name, check=False)
    assert api("head-bucket", "--bucket", name, check=False).returncode != 0


def test_s3api_completeness_calls(aws, tmp_path):
    """aws-cli over the issue-4 operations: multipart by hand, copy, tagging, CORS and the bucket
    settings."""
    name = unique_name("api4")
    api = lambda *a, **kw: json.loads(aws("s3api", *a, **kw).stdout or "{}")  # noqa: E731
    api("create-bucket", "--bucket", name)
    try:
        up = api("create-multipart-upload", "--bucket", name, "--key", "mp")["UploadId"]
        part = tmp_path / "part"
        part.write_bytes(b"p" * 1000)
        etag = api("upload-part", "--bucket", name, "--key", "mp", "--upload-id", up,
                   "--part-number", "1", "--body", str(part))["ETag"]
        listed = api("list-parts", "--bucket", name, "--key", "mp", "--upload-id", up)
        assert [p["PartNumber"] for p in listed["Parts"]] == [1]
        assert [u["Key"] for u in api("list-multipart-uploads", "--bucket", name)["Uploads"]] == ["mp"]
        layout = tmp_path / "parts.json"
        layout.write_text(json.dumps({"Parts": [{"PartNumber": 1, "ETag": etag}]}))
        done = api("complete-multipart-upload", "--bucket", name, "--key", "mp", "--upload-id", up,
                   "--multipart-upload", f"file://{layout}")
        assert done["ETag"].endswith('-1"')
        api("copy-object", "--bucket", name, "--key", "copy", "--copy-source", f"{name}/mp")
        assert api("head-object", "--bucket", name, "--key", "copy")["ContentLength"] == 1000
        api("put-object-tagging", "--bucket", name, "--key", "copy",
            "--tagging", "TagSet=[{Key=team,Value=blue}]")
        assert api("get-object-tagging", "--bucket", name, "--key", "copy")["TagSet"] == [{"Key": "team", "Value": "blue"}]
        cors = tmp_path / "cors.json"
        cors.write_text(json.dumps({"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}))
        api("put-bucket-cors", "--bucket", name, "--cors-configuration", f"file://{cors}")
        assert api("get-bucket-cors", "--bucket", name)["CORSRules"][0]["AllowedMethods"] == ["GET"]
        rules = api("get-bucket-ownership-controls", "--bucket", name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert api("get-bucket-request-payment", "--bucket", name)["Payer"] == "BucketOwner"
        assert api("get-public-access-block", "--bucket", name)["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
        for key in ("mp", "copy"):
            api("delete-object", "--bucket", name, "--key", key)
    finally:
        aws("s3api", "delete-bucket", "--bucket", name, check=False)


def test_s3api_lifecycle(aws, s3, bucket):
    """aws-cli sets, reads and deletes lifecycle rules (it sends the document with a checksum)."""
    config = {"Rules": [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
    ]}
    aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
        "--lifecycle-configuration", json.dumps(config))
    got = json.loads(aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket).stdout)
    assert got["Rules"] == config["Rules"], got
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == config["Rules"]
    aws("s3api", "delete-bucket-lifecycle", "--bucket", bucket)
    missing = aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and "NoSuchLifecycleConfiguration" in missing.stderr, missing.stderr
