"""Contract: configuration is validated at start-up (unknown keys and bad values name the key),
and root credentials are generated, printed once, and never printed again."""

import re
import subprocess

import pytest

from support.server import BIN, SluiceServer


def serve_must_fail(srv: SluiceServer, args=(), extra_env=None, timeout=20) -> str:
    env = {**srv.env(), **(extra_env or {})}
    try:
        cp = subprocess.run(
            [str(BIN), "serve", *args], env=env, cwd=srv.root, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sluice serve {' '.join(args)} kept running instead of refusing the configuration")
    assert cp.returncode != 0, f"exited 0\n{cp.stdout}\n{cp.stderr}"
    return cp.stdout + cp.stderr


def test_unknown_key_in_config_file_stops_start_up(start_server):
    srv = start_server(start=False)
    cfg = srv.root / "f.toml"
    cfg.write_text("bogus = 1\n")
    out = serve_must_fail(srv, ["--config", str(cfg)])
    assert "bogus" in out, out


def test_bad_value_in_config_file_stops_start_up(start_server):
    srv = start_server(start=False)
    cfg = srv.root / "f.toml"
    cfg.write_text('address = "not-an-address"\n')
    env = {k: v for k, v in srv.env().items() if k != "SLUICE_ADDRESS"}
    try:
        cp = subprocess.run([str(BIN), "serve", "--config", str(cfg)], env=env, cwd=srv.root,
                            capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("sluice serve accepted address = \"not-an-address\"")
    assert cp.returncode != 0
    assert "address" in (cp.stdout + cp.stderr), cp.stdout + cp.stderr


def test_unknown_sluice_env_var_stops_start_up(start_server):
    srv = start_server(start=False)
    out = serve_must_fail(srv, extra_env={"SLUICE_BOGUS": "1"})
    assert "bogus" in out.lower(), out


def test_bad_env_value_stops_start_up(start_server):
    srv = start_server(start=False)
    out = serve_must_fail(srv, extra_env={"SLUICE_ADDRESS": "not-an-address"})
    assert "address" in out.lower(), out


def test_valid_config_file_is_used(start_server):
    srv = start_server(start=False)
    cfg = srv.root / "ok.toml"
    cfg.write_text(f'address = "127.0.0.1:{srv.port}"\nregion = "us-east-1"\n')
    srv.server_env.pop("SLUICE_ADDRESS")
    srv.args = ["--config", str(cfg)]
    srv.start()
    assert srv.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


# "40-char-ish": a token of 30 to 64 key characters (base64 or base64url alphabets).
SECRET = re.compile(r"(?<![A-Za-z0-9/+=_-])[A-Za-z0-9/+=_-]{30,64}(?![A-Za-z0-9/+=_-])")
ACCESS = re.compile(r"\b[A-Z0-9]{16,32}\b")


def test_root_credentials_are_generated_and_printed_once(start_server):
    srv = start_server(root_keys=False)
    first = srv.stdout_text()
    access = ACCESS.findall(first)
    secrets = [t for t in SECRET.findall(first) if t not in access]
    assert secrets, f"no 40-character secret printed on first start:\n{first}"
    assert access, f"no access key printed on first start:\n{first}"
    # Find the pair that works.
    pair = None
    for ak in access:
        for sk in secrets:
            try:
                srv.client(ak, sk).list_buckets()
                pair = (ak, sk)
                break
            except Exception:
                continue
        if pair:
            break
    assert pair, f"printed credentials do not work: {access} {secrets}"
    srv.access_key, srv.secret_key = pair
    srv.restart()
    assert pair[1] not in srv.stdout_text() + srv.stderr_text(), "secret printed again on second start"
    assert srv.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    # Not written into the logs of the first start either, apart from the one stdout print.
    assert pair[1] not in (srv.root / "serve-1.stderr.log").read_text(errors="replace")
