"""restic (the Debian package; `make tools` installs it), a backup tool built on minio-go, keeps a
repository in a bucket: init, backup, a full check that reads every pack back, restore, a second
backup, and forget --prune, which deletes the packs no snapshot needs."""

import os
import shutil

import pytest

from support.server import direct_env
from support.util import list_all_keys, tool_runner
from test_awscli import make_tree, read_tree

MIB = 1024 * 1024


@pytest.fixture
def restic(server, bucket, tmp_path):
    exe = shutil.which("restic")
    assert exe, "restic is not installed (`make tools` installs the Debian package)"
    env = direct_env()
    env.update({
        "HOME": str(tmp_path / "home"),
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "RESTIC_PASSWORD": "not-a-secret",
        "RESTIC_REPOSITORY": f"s3:{server.endpoint}/{bucket}/repo",
    })
    return tool_runner([exe, "--no-cache", "--quiet"], env)


def data_bytes(s3, bucket):
    return sum(o["Size"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="repo/data/").get("Contents", []))


def test_backup_check_restore_and_prune(restic, s3, bucket, tmp_path, monkeypatch):
    first = {"big.bin": os.urandom(20 * MIB), "docs/a.txt": b"alpha", "docs/b.txt": b"bravo" * 1000}
    src = tmp_path / "src"
    make_tree(src, first)
    # Backed up as ".", the tree restores under the target as it was.
    monkeypatch.chdir(src)
    restic("init")
    restic("backup", ".", timeout=600)
    restic("check", "--read-data", timeout=600)
    restic("restore", "latest", "--target", str(tmp_path / "out1"), timeout=600)
    assert read_tree(tmp_path / "out1") == first

    # The big file goes, another comes: the second snapshot no longer needs its packs.
    (src / "big.bin").unlink()
    second = {"docs/a.txt": b"alpha", "docs/b.txt": b"bravo" * 1000, "new.bin": os.urandom(3 * MIB)}
    make_tree(src, {"new.bin": second["new.bin"]})
    restic("backup", ".", timeout=600)
    before = data_bytes(s3, bucket)
    restic("forget", "--keep-last", "1", "--prune", timeout=600)
    after = data_bytes(s3, bucket)
    assert before > 20 * MIB and after < 10 * MIB, (before, after)
    restic("check", "--read-data", timeout=600)
    restic("restore", "latest", "--target", str(tmp_path / "out2"), timeout=600)
    assert read_tree(tmp_path / "out2") == second
    keys = list_all_keys(s3, bucket)
    assert "repo/config" in keys
    assert len([k for k in keys if k.startswith("repo/snapshots/")]) == 1, keys
