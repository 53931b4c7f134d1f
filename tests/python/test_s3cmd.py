"""s3cmd (from PyPI, in the test venv) against the server, path-style: buckets, put/get/info,
multipart uploads, sync both ways with deletions, copy, move and metadata changes, `du` and
`la`, and the same data path signed with SigV2; then in virtual-hosted style."""

import hashlib
import os
import sys

import pytest

from support.server import DOMAIN, base_env
from support.util import expect_error, list_all_keys, tool_runner, unique_name, venv_tool
from test_awscli import make_tree, read_tree

MIB = 1024 * 1024


def s3cmd_runner(server, home, host_base: str, host_bucket: str, *extra: str):
    """`run(*args)` for s3cmd with a config in `home` for `server`'s root user."""
    conf = home / "s3cfg"
    conf.write_text("\n".join([
        "[default]",
        f"access_key = {server.access_key}",
        f"secret_key = {server.secret_key}",
        f"host_base = {host_base}",
        f"host_bucket = {host_bucket}",
        *extra,
        "bucket_location = us-east-1",
        "use_https = False",
        "signature_v2 = False",
        "progress_meter = False",
    ]) + "\n")
    env = {**base_env(), "HOME": str(home)}
    return tool_runner([sys.executable, venv_tool("s3cmd"), "-c", str(conf), "--no-mime-magic"], env)


@pytest.fixture(scope="module")
def s3cmd(server, tmp_path_factory):
    host = f"127.0.0.1:{server.port}"
    # A host_bucket without %(bucket)s means path-style requests.
    return s3cmd_runner(server, tmp_path_factory.mktemp("s3cmd-home"), host, host)


def test_bucket_put_get_info_del(s3cmd, s3, tmp_path):
    name = unique_name("s3cmd")
    s3cmd("mb", f"s3://{name}")
    assert f"s3://{name}" in s3cmd("ls").stdout
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from s3cmd")
    s3cmd("put", str(src), f"s3://{name}/docs/hello.txt")
    assert s3.get_object(Bucket=name, Key="docs/hello.txt")["Body"].read() == b"hello from s3cmd"
    listing = s3cmd("ls", f"s3://{name}/docs/").stdout
    assert f"s3://{name}/docs/hello.txt" in listing and " 16 " in listing, listing
    # info asks for the object, then the bucket's ACL, policy, CORS and lifecycle; the missing
    # ones are 404s it expects.
    info = s3cmd("info", f"s3://{name}/docs/hello.txt").stdout
    assert hashlib.md5(b"hello from s3cmd").hexdigest() in info, info
    bucket_info = s3cmd("info", f"s3://{name}").stdout
    assert "Location:" in bucket_info, bucket_info
    out = tmp_path / "out.txt"
    s3cmd("get", f"s3://{name}/docs/hello.txt", str(out))
    assert out.read_bytes() == b"hello from s3cmd"
    missing = s3cmd("get", f"s3://{name}/nope", str(tmp_path / "x"), check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr, missing.stderr
    refused = s3cmd("rb", f"s3://{name}", check=False)
    assert refused.returncode != 0 and "BucketNotEmpty" in refused.stderr, refused.stderr
    s3cmd("del", f"s3://{name}/docs/hello.txt")
    assert list_all_keys(s3, name) == []
    s3cmd("rb", f"s3://{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_multipart_put_and_get(s3cmd, s3, bucket, tmp_path):
    data = os.urandom(12 * MIB)
    src, out = tmp_path / "big.bin", tmp_path / "big.out"
    src.write_bytes(data)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(src), f"s3://{bucket}/big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"'), head["ETag"]
    s3cmd("get", f"s3://{bucket}/big.bin", str(out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    # No uploads left behind.
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_sync_both_ways(s3cmd, s3, bucket, tmp_path):
    files = {"a.txt": b"alpha", "sub/b.txt": b"bravo" * 1000, "sub/deeper/c.bin": os.urandom(70_000),
             "with space.txt": b"space", "ünï.txt": b"unicode"}
    up = tmp_path / "up"
    make_tree(up, files)
    s3cmd("sync", f"{up}/", f"s3://{bucket}/tree/")
    assert sorted(list_all_keys(s3, bucket)) == sorted("tree/" + k for k in files)
    for k, data in files.items():
        assert s3.get_object(Bucket=bucket, Key="tree/" + k)["Body"].read() == data, k

    (up / "a.txt").write_bytes(b"alpha, changed and longer")
    (up / "sub" / "b.txt").unlink()
    make_tree(up, {"new/d.txt": b"delta"})
    s3cmd("sync", "--delete-removed", f"{up}/", f"s3://{bucket}/tree/")
    keys = list_all_keys(s3, bucket)
    assert "tree/sub/b.txt" not in keys and "tree/new/d.txt" in keys
    assert s3.get_object(Bucket=bucket, Key="tree/a.txt")["Body"].read() == b"alpha, changed and longer"

    down = tmp_path / "down"
    down.mkdir()
    s3cmd("sync", f"s3://{bucket}/tree/", f"{down}/")
    assert read_tree(down) == read_tree(up)
    du = s3cmd("du", f"s3://{bucket}").stdout
    assert du.split()[0] == str(sum(len(v) for v in read_tree(up).values())), du
    assert f"s3://{bucket}/tree/a.txt" in s3cmd("la", "--recursive").stdout
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}/tree/")
    assert list_all_keys(s3, bucket) == []


def test_copy_move_and_modify(s3cmd, s3, bucket):
    s3.put_object(Bucket=bucket, Key="orig", Body=b"original", ContentType="application/octet-stream",
                  Metadata={"keep": "me"})
    s3cmd("cp", f"s3://{bucket}/orig", f"s3://{bucket}/copy")
    copy = s3.get_object(Bucket=bucket, Key="copy")
    assert copy["Body"].read() == b"original" and copy["Metadata"] == {"keep": "me"}
    s3cmd("mv", f"s3://{bucket}/copy", f"s3://{bucket}/moved")
    keys = list_all_keys(s3, bucket)
    assert "copy" not in keys and "moved" in keys
    # modify: a copy onto itself with the metadata replaced.
    s3cmd("modify", "--add-header=Content-Type:text/plain", "--add-header=x-amz-meta-extra:1",
          f"s3://{bucket}/moved")
    head = s3.head_object(Bucket=bucket, Key="moved")
    assert head["ContentType"] == "text/plain" and head["Metadata"].get("extra") == "1", head


def test_signature_v2(s3cmd, s3, bucket, tmp_path):
    src, out = tmp_path / "v2.txt", tmp_path / "v2.out"
    src.write_bytes(b"signed the old way")
    s3cmd("--signature-v2", "put", str(src), f"s3://{bucket}/v2 key+plus.txt")
    assert s3.get_object(Bucket=bucket, Key="v2 key+plus.txt")["Body"].read() == b"signed the old way"
    assert "v2 key+plus.txt" in s3cmd("--signature-v2", "ls", f"s3://{bucket}").stdout
    s3cmd("--signature-v2", "get", f"s3://{bucket}/v2 key+plus.txt", str(out))
    assert out.read_bytes() == b"signed the old way"
    s3cmd("--signature-v2", "del", f"s3://{bucket}/v2 key+plus.txt")
    assert list_all_keys(s3, bucket) == []


def test_expire_sets_lifecycle_rules(s3cmd, s3, bucket):
    """`s3cmd expire` writes an expiry rule; `getlifecycle` reads it back and `dellifecycle`
    removes it."""
    s3cmd("expire", f"s3://{bucket}", "--expiry-days=3", "--expiry-prefix=logs/")
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Filter"] == {"Prefix": "logs/"} and rule["Expiration"] == {"Days": 3}, rule
    assert rule["Status"] == "Enabled", rule
    shown = s3cmd("getlifecycle", f"s3://{bucket}").stdout
    assert "<Days>3</Days>" in shown and "<Prefix>logs/</Prefix>" in shown, shown
    s3cmd("dellifecycle", f"s3://{bucket}")
    expect_error(404, "NoSuchLifecycleConfiguration", s3.get_bucket_lifecycle_configuration, Bucket=bucket)


@pytest.fixture(scope="module")
def s3cmd_vhost(server, tmp_path_factory):
    """s3cmd in virtual-hosted style (`host_bucket = %(bucket)s.s3.localhost:PORT`, the shared
    server's domain). Nothing resolves *.s3.localhost on a plain machine, so s3cmd reaches the
    server as its HTTP proxy: the request line holds the absolute URL (absolute-form), Host the
    bucket's virtual host."""
    return s3cmd_runner(server, tmp_path_factory.mktemp("s3cmd-vhost-home"), f"{DOMAIN}:{server.port}",
                        f"%(bucket)s.{DOMAIN}:{server.port}",
                        "proxy_host = 127.0.0.1", f"proxy_port = {server.port}")


@pytest.mark.parametrize("signature", ["v4", "v2"])
def test_virtual_hosted_style(s3cmd_vhost, s3, bucket, tmp_path, server, signature):
    sig = ["--signature-v2"] if signature == "v2" else []
    src, out = tmp_path / "in.bin", tmp_path / "out.bin"
    data = os.urandom(12 * MIB)
    src.write_bytes(data)
    # 5 MiB chunks: a multipart upload of three parts.
    sent = s3cmd_vhost(*sig, "-d", "--multipart-chunk-size-mb=5", "put", str(src), f"s3://{bucket}/v h+.bin")
    # The bucket travelled in Host (s3cmd asks for the bucket's location path-style first).
    assert f"uri='http://{bucket}.{DOMAIN}:{server.port}/v%20h%2B.bin" in sent.stderr, sent.stderr[-3000:]
    head = s3.head_object(Bucket=bucket, Key="v h+.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"'), head
    assert "v h+.bin" in s3cmd_vhost(*sig, "ls", f"s3://{bucket}").stdout
    s3cmd_vhost(*sig, "get", f"s3://{bucket}/v h+.bin", str(out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    s3cmd_vhost(*sig, "cp", f"s3://{bucket}/v h+.bin", f"s3://{bucket}/copy")
    assert s3.head_object(Bucket=bucket, Key="copy")["ContentLength"] == len(data)
    assert f"s3://{bucket}/" in s3cmd_vhost(*sig, "info", f"s3://{bucket}").stdout
    s3cmd_vhost(*sig, "del", f"s3://{bucket}/v h+.bin", f"s3://{bucket}/copy")
    assert list_all_keys(s3, bucket) == []
