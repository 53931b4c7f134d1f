"""s3fs-fuse (the Debian package; `make tools` installs it) mounts a bucket as a file system:
files written, read back, appended to (a rewrite), renamed (CopyObject and a delete), their mode
and time changed (CopyObject replacing the metadata), truncated, linked, and removed; a 30 MiB
file goes up in parts."""

import os
import shutil
import subprocess
import time

import pytest

from support.server import direct_env

MIB = 1024 * 1024


@pytest.fixture
def mounted(server, bucket, tmp_path):
    exe = shutil.which("s3fs")
    assert exe, "s3fs is not installed (`make tools` installs the Debian package)"
    assert os.path.exists("/dev/fuse"), "s3fs needs /dev/fuse"
    passwd = tmp_path / "passwd"
    passwd.write_text(f"{server.access_key}:{server.secret_key}\n")
    passwd.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = direct_env()
    subprocess.run(
        [exe, bucket, str(mnt), "-o", f"passwd_file={passwd}", "-o", f"url={server.endpoint}",
         "-o", "use_path_request_style", "-o", "endpoint=us-east-1", "-o", "retries=1"],
        env=env, check=True, timeout=30, capture_output=True, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mnt):
            assert time.monotonic() < deadline, "s3fs did not mount"
            time.sleep(0.1)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], timeout=30, capture_output=True)


def test_files_through_the_mount(mounted, s3, bucket, tmp_path):
    mnt = mounted
    (mnt / "a.txt").write_bytes(b"hello")
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"hello"
    big = os.urandom(30 * MIB)
    (mnt / "dir").mkdir()
    (mnt / "dir" / "big.bin").write_bytes(big)
    assert s3.head_object(Bucket=bucket, Key="dir/big.bin")["ContentLength"] == len(big)
    assert (mnt / "dir" / "big.bin").read_bytes() == big
    with open(mnt / "a.txt", "ab") as f:
        f.write(b" world")
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"hello world"
    (mnt / "a.txt").rename(mnt / "dir" / "b.txt")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "a.txt" not in keys and "dir/b.txt" in keys, keys
    os.chmod(mnt / "dir" / "b.txt", 0o600)
    os.utime(mnt / "dir" / "b.txt", (1_577_836_800, 1_577_836_800))
    st = os.stat(mnt / "dir" / "b.txt")
    assert (st.st_mode & 0o777, int(st.st_mtime)) == (0o600, 1_577_836_800)
    # s3fs keeps mode and time in the object's metadata, set by a copy onto itself.
    meta = s3.head_object(Bucket=bucket, Key="dir/b.txt")["Metadata"]
    assert int(meta["mode"]) & 0o777 == 0o600 and meta["mtime"] == "1577836800", meta
    assert s3.get_object(Bucket=bucket, Key="dir/b.txt")["Body"].read() == b"hello world"
    # Truncated through an open file, as coreutils' truncate does (s3fs 1.90 uploads zeros for a
    # truncate(2) by path without reading the object first: no GET reaches the server).
    with open(mnt / "dir" / "big.bin", "r+b") as f:
        f.truncate(100)
    assert s3.get_object(Bucket=bucket, Key="dir/big.bin")["Body"].read() == big[:100]
    os.symlink("b.txt", mnt / "dir" / "link")
    assert os.readlink(mnt / "dir" / "link") == "b.txt"
    shutil.rmtree(mnt / "dir")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
