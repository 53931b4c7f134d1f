"""Issue 4 item 9: a 1 GiB multipart upload with 8 MiB parts through aws-cli and an `aws s3 cp`
download compared by SHA-256, with the server's peak RSS kept below 256 MiB."""

import hashlib
import os
import subprocess
import threading
import time

import pytest

from support.server import base_env
from test_awscli import aws_executable

pytestmark = pytest.mark.slow

GIB = 1024 * 1024 * 1024
CHUNK = 8 * 1024 * 1024
RSS_LIMIT_MIB = 256


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_random_file(path, size):
    h = hashlib.sha256()
    block = os.urandom(CHUNK)
    with open(path, "wb") as f:
        for i in range(size // CHUNK):
            # Vary each block cheaply so parts differ.
            chunk = i.to_bytes(8, "big") + block[8:]
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.timeout(900)
def test_one_gib_multipart_with_aws_cli_and_flat_memory(start_server, tmp_path):
    srv = start_server()
    home = tmp_path / "aws-home"
    home.mkdir()
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {srv.access_key}\naws_secret_access_key = {srv.secret_key}\n"
    )
    (home / "config").write_text(
        "[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 8MB\n  multipart_chunksize = 8MB\n"
        "  addressing_style = path\n"
    )
    env = {**base_env(), "HOME": str(home), "AWS_CONFIG_FILE": str(home / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_EC2_METADATA_DISABLED": "true"}
    src = tmp_path / "one-gib.bin"
    digest = write_random_file(src, GIB)
    aws = [aws_executable(), "--endpoint-url", srv.endpoint]

    peak = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(srv.proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for args in (["s3", "mb", "s3://big"], ["s3", "cp", "--only-show-errors", str(src), "s3://big/one-gib.bin"]):
            cp = subprocess.run(aws + args, env=env, capture_output=True, text=True, timeout=600)
            assert cp.returncode == 0, cp.stderr
        head = srv.client().head_object(Bucket="big", Key="one-gib.bin")
        assert head["ContentLength"] == GIB
        assert head["ETag"].endswith('-128"'), head["ETag"]
        src.unlink()  # keep disk use down: compare the download with the recorded digest
        back = tmp_path / "back.bin"
        cp = subprocess.run(aws + ["s3", "cp", "--only-show-errors", "s3://big/one-gib.bin", str(back)], env=env,
                            capture_output=True, text=True, timeout=600)
        assert cp.returncode == 0, cp.stderr
    finally:
        stop.set()
        sampler.join()
    hwm = rss_mib(srv.proc.pid, "VmHWM")
    print(f"server peak RSS during 1 GiB multipart: sampled {peak[0]:.0f} MiB, VmHWM {hwm:.0f} MiB")
    assert sha256_of(back) == digest
    assert hwm < RSS_LIMIT_MIB, f"server peak RSS {hwm:.0f} MiB"
