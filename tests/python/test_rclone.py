"""rclone (the Debian package; `make tools` installs it) against the server: copy, check, sync and
download of a tree with a multipart file, server-side copy and move (CopyObject and
UploadPartCopy), listing pages in both ListObjects versions with and without URL encoding, and
buckets made and removed; the same in virtual-hosted style."""

import hashlib
import json
import os
import re
import shutil

import pytest

from support.server import DOMAIN, direct_env
from support.util import list_all_keys, tool_runner, unique_name
from test_awscli import make_tree, read_tree

MIB = 1024 * 1024
# Small cutoffs so that a 12 MiB file goes up in three 5 MiB parts and is copied part by part.
MULTIPART = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--s3-copy-cutoff", "5M"]


def rclone_runner(server, home, remote: str, endpoint: str, path_style: bool, **env_extra: str):
    """`run(*args)` for rclone with remote `remote` for `server`'s root user, config in `home`."""
    exe = shutil.which("rclone")
    assert exe, "rclone is not installed (`make tools` installs the Debian package)"
    conf = home / "rclone.conf"
    conf.write_text(
        f"[{remote}]\n"
        "type = s3\n"
        "provider = Other\n"
        f"access_key_id = {server.access_key}\n"
        f"secret_access_key = {server.secret_key}\n"
        f"endpoint = {endpoint}\n"
        "region = us-east-1\n"
        f"force_path_style = {'true' if path_style else 'false'}\n"
    )
    env = direct_env()
    env.update({"HOME": str(home), "RCLONE_CONFIG": str(conf), "TZ": "UTC", **env_extra})
    # No retries: a failed request fails the command, so the test sees it.
    return tool_runner([exe, "--retries", "1", "--low-level-retries", "1"], env)


@pytest.fixture(scope="module")
def rclone(server, tmp_path_factory):
    return rclone_runner(server, tmp_path_factory.mktemp("rclone-home"), "sluice", server.endpoint,
                         path_style=True)


@pytest.fixture(scope="module")
def rclone_vhost(server, tmp_path_factory):
    """rclone in virtual-hosted style: each request names its bucket in Host
    (`<bucket>.s3.localhost:PORT`, the shared server's domain). Nothing resolves *.s3.localhost on
    a plain machine, so rclone reaches the server as its HTTP proxy: the request line then holds
    the absolute URL (RFC 9112 absolute-form), which a server must accept, and Host the bucket's
    virtual host, which is what the server routes and the signature covers."""
    return rclone_runner(server, tmp_path_factory.mktemp("rclone-vhost-home"), "vhost",
                         f"http://{DOMAIN}:{server.port}", path_style=False,
                         HTTP_PROXY=f"http://127.0.0.1:{server.port}")


def tree_files() -> dict[str, bytes]:
    return {
        "a.txt": b"alpha",
        "empty": b"",
        "sub/b.txt": b"bravo" * 1000,
        "sub/deeper/c.bin": os.urandom(300_000),
        "with space & plus+.txt": b"odd characters",
        "ünïcødé/ключ.txt": "unicode".encode(),
        "big/twelve.bin": os.urandom(12 * MIB),
    }


def test_copy_check_sync_and_download(rclone, s3, bucket, tmp_path):
    files = tree_files()
    up = tmp_path / "up"
    make_tree(up, files)
    rclone("copy", str(up), f"sluice:{bucket}/tree", *MULTIPART)
    assert sorted(list_all_keys(s3, bucket)) == sorted("tree/" + k for k in files)
    for k, data in files.items():
        assert s3.get_object(Bucket=bucket, Key="tree/" + k)["Body"].read() == data, k
    big = s3.head_object(Bucket=bucket, Key="tree/big/twelve.bin")
    assert big["ETag"].endswith('-3"'), f"12 MiB in 5 MiB chunks is three parts: {big['ETag']}"

    # `check` compares sizes and MD5s: the ETag for single PUTs, the md5chksum rclone keeps in
    # the metadata for multipart ones.
    rclone("check", str(up), f"sluice:{bucket}/tree")
    listed = json.loads(rclone("lsjson", "-R", "--hash", "--files-only", f"sluice:{bucket}/tree").stdout)
    got = {e["Path"]: e for e in listed}
    assert sorted(got) == sorted(files)
    for k, data in files.items():
        assert got[k]["Size"] == len(data), k
        assert got[k]["Hashes"]["md5"] == hashlib.md5(data).hexdigest(), k

    # The modification time travels as metadata and comes back in listings (rclone reads it
    # with a HEAD per object).
    stamp = 1_600_000_000
    os.utime(up / "a.txt", (stamp, stamp))
    (up / "a.txt").write_bytes(b"alpha, changed")
    os.utime(up / "a.txt", (stamp, stamp))
    (up / "sub" / "b.txt").unlink()
    make_tree(up, {"new/d.txt": b"delta"})
    rclone("sync", str(up), f"sluice:{bucket}/tree", *MULTIPART)
    keys = list_all_keys(s3, bucket)
    assert "tree/sub/b.txt" not in keys and "tree/new/d.txt" in keys
    assert s3.get_object(Bucket=bucket, Key="tree/a.txt")["Body"].read() == b"alpha, changed"
    entry = json.loads(rclone("lsjson", f"sluice:{bucket}/tree/a.txt").stdout)[0]
    assert entry["ModTime"].startswith("2020-09-13T12:26:40"), entry
    rclone("check", str(up), f"sluice:{bucket}/tree")

    down = tmp_path / "down"
    rclone("copy", f"sluice:{bucket}/tree", str(down), *MULTIPART)
    assert read_tree(down) == read_tree(up)
    # A second sync has nothing to do: sizes and times match.
    again = rclone("sync", str(up), f"sluice:{bucket}/tree", "-v")
    assert "Copied" not in again.stderr and "Deleted" not in again.stderr, again.stderr

    rclone("delete", f"sluice:{bucket}/tree/sub")
    assert not [k for k in list_all_keys(s3, bucket) if k.startswith("tree/sub/")]
    rclone("purge", f"sluice:{bucket}/tree")
    assert list_all_keys(s3, bucket) == []


def test_server_side_copy_and_move(rclone, s3, bucket):
    small, big = b"small object" * 10, os.urandom(12 * MIB)
    s3.put_object(Bucket=bucket, Key="src/small", Body=small)
    s3.put_object(Bucket=bucket, Key="src/big", Body=big)
    rclone("copyto", f"sluice:{bucket}/src/small", f"sluice:{bucket}/copy/small", *MULTIPART)
    # Over the copy cutoff: a multipart upload whose parts are UploadPartCopy ranges.
    rclone("copyto", f"sluice:{bucket}/src/big", f"sluice:{bucket}/copy/big", *MULTIPART)
    assert s3.get_object(Bucket=bucket, Key="copy/small")["Body"].read() == small
    copied = s3.get_object(Bucket=bucket, Key="copy/big")
    assert copied["ETag"].endswith('-3"'), copied["ETag"]
    assert hashlib.sha256(copied["Body"].read()).digest() == hashlib.sha256(big).digest()

    rclone("moveto", f"sluice:{bucket}/copy/small", f"sluice:{bucket}/moved/small", *MULTIPART)
    keys = list_all_keys(s3, bucket)
    assert "copy/small" not in keys and "moved/small" in keys
    assert rclone("cat", f"sluice:{bucket}/moved/small").stdout.encode() == small
    size = json.loads(rclone("size", "--json", f"sluice:{bucket}").stdout)
    assert size["count"] == 4 and size["bytes"] == 2 * len(small) + 2 * len(big), size


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("url_encode", ["true", "false"])
def test_listing_pages(rclone, s3, bucket, version, url_encode):
    keys = [f"dir/k{i:02}" for i in range(7)] + ["dir/sub/x", "dir/sub/y", "top", "dir/spa ce+plus"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    # Three keys a page: rclone follows the markers (v1) or continuation tokens (v2).
    opts = ["--s3-list-chunk", "3", "--s3-list-version", version, "--s3-list-url-encode", url_encode]
    flat = rclone("lsf", "-R", "--files-only", *opts, f"sluice:{bucket}").stdout.splitlines()
    assert sorted(flat) == sorted(keys)
    top = rclone("lsf", *opts, f"sluice:{bucket}/dir").stdout.splitlines()
    assert sorted(top) == sorted([k[len("dir/"):] for k in keys if k.startswith("dir/") and "/sub/" not in k] + ["sub/"])


def test_mkdir_and_rmdir_bucket(rclone, s3):
    name = unique_name("rcl")
    rclone("mkdir", f"sluice:{name}")
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    listed = rclone("lsd", "sluice:").stdout
    assert name in listed, listed
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    refused = rclone("rmdir", f"sluice:{name}", check=False)
    assert refused.returncode != 0 and name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.delete_object(Bucket=name, Key="k")
    rclone("rmdir", f"sluice:{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_virtual_hosted_style(rclone_vhost, s3, bucket, tmp_path, server):
    files = {"a.txt": b"alpha", "sub/ünï c+d.txt": b"odd key", "big/twelve.bin": os.urandom(12 * MIB)}
    up = tmp_path / "up"
    make_tree(up, files)
    sent = rclone_vhost("copy", "--dump", "headers", str(up), f"vhost:{bucket}/t", *MULTIPART)
    # The bucket travelled in Host, not in the path.
    assert f"Host: {bucket}.{DOMAIN}:{server.port}" in sent.stderr, sent.stderr[-2000:]
    targets = re.findall(r" : (?:GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.1", sent.stderr)
    assert targets and not [t for t in targets if t.startswith(f"/{bucket}")], targets
    assert sorted(list_all_keys(s3, bucket)) == sorted("t/" + k for k in files)
    big = s3.get_object(Bucket=bucket, Key="t/big/twelve.bin")
    assert big["ETag"].endswith('-3"'), big["ETag"]
    rclone_vhost("check", str(up), f"vhost:{bucket}/t")
    assert sorted(rclone_vhost("lsf", "-R", "--files-only", f"vhost:{bucket}/t").stdout.splitlines()) == sorted(files)
    assert rclone_vhost("cat", f"vhost:{bucket}/t/sub/ünï c+d.txt").stdout.encode() == b"odd key"
    rclone_vhost("moveto", f"vhost:{bucket}/t/a.txt", f"vhost:{bucket}/moved/a.txt")
    assert s3.get_object(Bucket=bucket, Key="moved/a.txt")["Body"].read() == b"alpha"
    down = tmp_path / "down"
    rclone_vhost("copy", f"vhost:{bucket}", str(down), *MULTIPART)
    assert read_tree(down) == {"moved/a.txt": b"alpha", **{"t/" + k: v for k, v in files.items() if k != "a.txt"}}
    rclone_vhost("purge", f"vhost:{bucket}/t")
    rclone_vhost("delete", f"vhost:{bucket}/moved")
    assert list_all_keys(s3, bucket) == []
