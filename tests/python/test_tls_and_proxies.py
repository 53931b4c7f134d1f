"""Issue 4 item 7: an HTTPS listener (rustls) next to plain HTTP, used by boto3 and aws-cli with a
test CA; HTTP/2 by ALPN; certificate reload on SIGHUP; X-Forwarded-Host / -Proto believed only
from trusted proxies."""

import signal
import socket
import ssl
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from support.s3raw import assert_s3_error
from support.server import base_env, free_port
from test_awscli import aws_executable


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=Sluice Test CA", cwd=d)


def make_cert(d, name, serial):
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(serial), "-days", "2", "-out", f"{name}.pem", "-extfile", ext.name, cwd=d)


@pytest.fixture
def tls_server(tmp_path, start_server):
    certs = tmp_path / "certs"
    certs.mkdir()
    make_ca(certs)
    make_cert(certs, "server", 1001)
    port = free_port()
    srv = start_server(extra_env={
        "SLUICE_TLS_CERT": str(certs / "server.pem"),
        "SLUICE_TLS_KEY": str(certs / "server.key"),
        "SLUICE_TLS_ADDRESS": f"127.0.0.1:{port}",
    })
    srv.tls_endpoint = f"https://127.0.0.1:{port}"
    srv.tls_port = port
    srv.certs = certs
    return srv


def https_client(srv):
    return boto3.session.Session().client(
        "s3", endpoint_url=srv.tls_endpoint, aws_access_key_id=srv.access_key,
        aws_secret_access_key=srv.secret_key, region_name="us-east-1",
        verify=str(srv.certs / "ca.pem"),
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}),
    )


def peer_serial(srv):
    ctx = ssl.create_default_context(cafile=str(srv.certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return int(tls.getpeercert()["serialNumber"], 16)


def test_boto3_over_https_with_a_test_ca(tls_server):
    s3 = https_client(tls_server)
    s3.create_bucket(Bucket="tlsbucket")
    # Over TLS boto3 sends aws-chunked bodies with a trailing checksum.
    s3.put_object(Bucket="tlsbucket", Key="k", Body=b"secret bytes" * 1000)
    assert s3.get_object(Bucket="tlsbucket", Key="k")["Body"].read() == b"secret bytes" * 1000
    # Plain HTTP keeps serving beside it.
    assert tls_server.client().head_object(Bucket="tlsbucket", Key="k")["ContentLength"] == 12000


def test_aws_cli_over_https(tls_server, tmp_path):
    home = tmp_path / "aws-home"
    home.mkdir()
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {tls_server.access_key}\n"
        f"aws_secret_access_key = {tls_server.secret_key}\n"
    )
    env = {**base_env(), "HOME": str(home), "AWS_CONFIG_FILE": str(home / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 300_000)
    base = [aws_executable(), "--endpoint-url", tls_server.tls_endpoint, "--ca-bundle", str(tls_server.certs / "ca.pem")]
    for args in (["s3", "mb", "s3://clitls"], ["s3", "cp", str(src), "s3://clitls/f.bin"],
                 ["s3", "cp", "s3://clitls/f.bin", str(tmp_path / "back.bin")]):
        cp = subprocess.run(base + args, env=env, capture_output=True, text=True, timeout=120)
        assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_http2_is_negotiated_by_alpn(tls_server):
    cp = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(tls_server.certs / "ca.pem"), "-o", "/dev/null",
         "-w", "%{http_version}", f"{tls_server.tls_endpoint}/_sluice/health/ready"],
        capture_output=True, text=True, timeout=30,
    )
    assert cp.stdout == "2", cp


def test_certificate_reloads_on_sighup(tls_server):
    assert peer_serial(tls_server) == 1001
    make_cert(tls_server.certs, "server", 2002)  # overwrite the files in place
    tls_server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while peer_serial(tls_server) != 2002:
        assert time.monotonic() < deadline, "certificate was not reloaded"
        time.sleep(0.1)
    # A broken pair keeps the old certificate serving.
    (tls_server.certs / "server.pem").write_text("not a certificate")
    tls_server.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert peer_serial(tls_server) == 2002


def forwarded_request(srv, trusted_host_header):
    raw = srv.raw()
    srv.client().create_bucket(Bucket="fwd")
    target, headers, _ = raw.build("GET", "/fwd", host="public.example.com")
    headers = {k: v for k, v in headers.items() if k.lower() != "host"}
    headers["Host"] = raw.host
    headers["X-Forwarded-Host"] = trusted_host_header
    headers["X-Forwarded-Proto"] = "https"
    return raw.send("GET", target, headers)


def test_forwarded_host_is_believed_from_trusted_proxies_only(start_server):
    trusted = start_server(extra_env={"SLUICE_TRUSTED_PROXIES": "127.0.0.1/32"})
    assert forwarded_request(trusted, "public.example.com").status == 200
    untrusted = start_server()
    assert_s3_error(forwarded_request(untrusted, "public.example.com"), 403, "SignatureDoesNotMatch")


def test_sigv4_over_http2(tls_server):
    """HTTP/2 carries the host in :authority; signed requests must still verify."""
    tls_server.client().create_bucket(Bucket="h2bucket")
    cp = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(tls_server.certs / "ca.pem"),
         "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{tls_server.access_key}:{tls_server.secret_key}",
         "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
         "-o", "/dev/null", "-w", "%{http_version} %{http_code}", f"{tls_server.tls_endpoint}/h2bucket"],
        capture_output=True, text=True, timeout=30,
    )
    assert cp.stdout == "2 200", (cp.stdout, cp.stderr)
