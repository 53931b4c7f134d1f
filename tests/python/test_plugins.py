"""Plugins: `sluice plugin check`, start-up refusal of broken plugins, the authenticator chain
with the shipped static-keys and header-auth plugins, the admin listing, and hot reload."""

import json
import os
import signal
import subprocess
import threading
import time

import botocore.exceptions
import pytest
import requests

from support.plugins import (
    HEADER_AUTH, HOSTILE, OIDC, STATIC_KEYS, admin_plugins, plugin_entry, plugin_server,
)
from support.s3raw import assert_s3_error
from support.server import BIN, REPO, base_env, s3_client
from support.util import unique_name

pytestmark = pytest.mark.auth

ALICE = {"access_key": "AKALICESTATIC0001", "secret_key": "alice-static-secret-0001",
         "subject": "alice", "display_name": "Alice", "groups": ["readers"]}


def static_keys(name="static-keys", keys=(ALICE,), path=STATIC_KEYS, **kw):
    return plugin_entry(name, path, config={"keys": list(keys)}, **kw)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response["Error"]["Code"]


# -- plugin check -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [STATIC_KEYS, HEADER_AUTH, OIDC, HOSTILE], ids=lambda p: p.name)
def test_plugin_check_names_world_and_imports(path):
    cp = subprocess.run([str(BIN), "plugin", "check", str(path)], capture_output=True, text=True,
                        env=base_env(), timeout=120)
    assert cp.returncode == 0, cp.stderr
    report = json.loads(cp.stdout)
    assert report["world"] == "authenticator"
    assert report["loadable"] is True and report["verdict"] == "ok"
    assert "sluice:plugin/authentication@0.1.0" in report["exports"]
    assert "sluice:plugin/plugin-info@0.1.0" in report["exports"]
    assert any(i.startswith("sluice:plugin/") for i in report["imports"])


def test_plugin_check_refuses_what_is_not_a_plugin(tmp_path):
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"\0asm\x0d\0\x01\0garbage")
    cp = subprocess.run([str(BIN), "plugin", "check", str(junk)], capture_output=True, text=True,
                        env=base_env(), timeout=120)
    assert cp.returncode != 0
    report = json.loads(cp.stdout)
    assert report["loadable"] is False and report["verdict"] != "ok"
    missing = subprocess.run([str(BIN), "plugin", "check", str(tmp_path / "nope.wasm")],
                             capture_output=True, text=True, env=base_env(), timeout=120)
    assert missing.returncode != 0 and "nope.wasm" in missing.stdout + missing.stderr


# -- start-up refusals ------------------------------------------------------------------------

def serve_must_fail(srv, timeout=60) -> str:
    try:
        cp = subprocess.run([str(BIN), "serve", *srv.args], env=srv.env(), cwd=srv.root,
                            capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("sluice serve kept running with a broken plugin")
    assert cp.returncode != 0
    return cp.stdout + cp.stderr


def test_start_up_refuses_a_plugin_of_the_wrong_world(start_server):
    srv = plugin_server(start_server, plugin_entry("gate", STATIC_KEYS, world="authorizer"),
                        start=False)
    out = serve_must_fail(srv)
    assert "gate" in out and "authorizer" in out and "authenticator" in out, out


def test_start_up_refuses_a_missing_or_broken_plugin(start_server, tmp_path):
    srv = plugin_server(start_server, plugin_entry("ghost", tmp_path / "missing.wasm"), start=False)
    assert "ghost" in serve_must_fail(srv)
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm at all")
    srv = plugin_server(start_server, plugin_entry("junk", junk), start=False)
    assert "junk" in serve_must_fail(srv)


def test_start_up_refuses_an_unhealthy_plugin(start_server):
    # static-keys rejects its own config (an access key listed twice) in health().
    srv = plugin_server(start_server, static_keys(keys=[ALICE, ALICE]), start=False)
    out = serve_must_fail(srv)
    assert "static-keys" in out and "health" in out, out


@pytest.mark.parametrize("bad, key", [
    ('failure = "open"\nworld = "authorizer"', "failure"),
    ('failure = "sometimes"', "failure"),
    ('limits = { memory_mb = 0 }', "memory_mb"),
    ('limits = { bogus = 1 }', "bogus"),
    ('name = "Bad Name"', "name"),
])
def test_bad_plugin_settings_are_named(start_server, bad, key):
    fields = {"name": '"p"', "world": '"authenticator"', "path": json.dumps(str(STATIC_KEYS))}
    extra = []
    for line in bad.split("\n"):
        k, v = line.split(" = ", 1)
        if k in fields:
            fields[k] = v
        else:
            extra.append(line)
    entry = "[[plugins]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()) + "\n".join(extra)
    srv = plugin_server(start_server, entry + "\n", start=False)
    assert key in serve_must_fail(srv)


def test_shipped_config_loads_all_shipped_plugins(start_server):
    """`make run` uses sluice.toml: every shipped plugin loads, and it is inert."""
    srv = start_server(start=False)
    srv.args = ["--config", str(REPO / "sluice.toml")]
    srv.start()
    listed = admin_plugins(srv)
    assert set(listed) == {"static-keys", "header-auth", "oidc", "time-window", "local-kms",
                           "s3-target"}
    assert all(p["version"] for p in listed.values())
    worlds = {n: p["world"] for n, p in listed.items()}
    assert worlds["time-window"] == "authorizer" and worlds["local-kms"] == "key-provider"
    assert worlds["s3-target"] == "replication-target"
    # The shipped config also loads the shipped policy files.
    assert "policies loaded" in srv.stderr_text()
    # Inert: a proxy identity header from loopback proves nothing, no sample key works.
    r = requests.put(f"{srv.endpoint}/{unique_name('b')}", headers={"X-Forwarded-User": "root"})
    assert r.status_code == 403
    with pytest.raises(botocore.exceptions.ClientError) as e:
        srv.client("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").list_buckets()
    assert error_code(e.value) == "InvalidAccessKeyId"


# -- static-keys through the chain ------------------------------------------------------------

@pytest.fixture(scope="module")
def keys_server(tmp_path_factory):
    from support.server import SluiceServer
    root = tmp_path_factory.mktemp("keys-server")
    srv = SluiceServer(root)
    cfg = root / "plugins.toml"
    expired = {"access_key": "AKEXPIREDSTATIC01", "secret_key": "expired-secret-0001",
               "subject": "old", "expires_at": 1_000_000_000}
    cfg.write_text(static_keys(keys=[ALICE, expired], limits={"cache_ttl_secs": 60}))
    srv.args = ["--config", str(cfg)]
    srv.start()
    yield srv
    srv.stop()


def test_static_key_signs_requests_end_to_end(keys_server):
    s3 = keys_server.client(ALICE["access_key"], ALICE["secret_key"])
    bucket = unique_name("sk")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"from a plugin key")
    assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"from a plugin key"
    owner = s3.list_buckets()["Owner"]
    # Namespaced: a plugin principal is `<plugin>:<subject>`, never an IAM id.
    assert owner == {"ID": "static-keys:alice", "DisplayName": "Alice"}
    acl_owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]["Owner"]
    assert acl_owner["ID"] == "static-keys:alice"
    # Presigned URLs signed with a plugin key work too.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hello.txt"})
    assert requests.get(url).content == b"from a plugin key"
    # Root sees the bucket; the plugin principal does not own root's buckets.
    root = keys_server.client()
    other = unique_name("root")
    root.create_bucket(Bucket=other)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket=other)
    assert error_code(e.value) == "AccessDenied"


def test_wrong_secret_unknown_and_expired_keys_are_refused(keys_server):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        keys_server.client(ALICE["access_key"], "not-the-secret").list_buckets()
    assert error_code(e.value) == "SignatureDoesNotMatch"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        keys_server.client("AKNOBODYKNOWSTHIS1", "whatever-secret").list_buckets()
    assert error_code(e.value) == "InvalidAccessKeyId"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        keys_server.client("AKEXPIREDSTATIC01", "expired-secret-0001").list_buckets()
    assert error_code(e.value) == "InvalidAccessKeyId"


def test_plugin_principal_is_never_admin(keys_server):
    r = keys_server.raw(ALICE["access_key"], ALICE["secret_key"]).request("GET", "/_sluice/admin/plugins")
    assert_s3_error(r, 403, "AccessDenied")
    cp = keys_server.admin("user", "list", creds=(ALICE["access_key"], ALICE["secret_key"]), check=False)
    assert cp.returncode != 0 and "AccessDenied" in cp.stderr
    r = requests.get(f"{keys_server.endpoint}/_sluice/admin/plugins")
    assert r.status_code == 403


def test_answers_are_cached(keys_server):
    s3 = keys_server.client(ALICE["access_key"], ALICE["secret_key"])
    s3.list_buckets()
    before = admin_plugins(keys_server)["static-keys"]["calls"]
    for _ in range(20):
        s3.list_buckets()
    assert admin_plugins(keys_server)["static-keys"]["calls"] == before
    # Unknown keys are cached too (negative TTL), so a flood of them is not a flood of calls.
    bad = keys_server.client("AKFLOODFLOODFLOOD1", "x" * 40)
    for _ in range(10):
        with pytest.raises(botocore.exceptions.ClientError):
            bad.list_buckets()
    assert admin_plugins(keys_server)["static-keys"]["calls"] <= before + 1


def test_admin_listing_shows_versions_and_call_times(keys_server):
    info = admin_plugins(keys_server)["static-keys"]
    assert info["world"] == "authenticator" and info["plugin_name"] == "static-keys"
    assert info["version"] == "0.1.0"
    assert info["calls"] >= 1 and info["p50_us"] > 0 and info["p99_us"] >= info["p50_us"]
    cp = subprocess.run([str(BIN), "plugin", "list", "--endpoint", keys_server.endpoint],
                        capture_output=True, text=True, timeout=60,
                        env={**base_env(), "AWS_ACCESS_KEY_ID": keys_server.access_key,
                             "AWS_SECRET_ACCESS_KEY": keys_server.secret_key})
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["plugins"][0]["name"] == "static-keys"


# -- header-auth ------------------------------------------------------------------------------

def test_header_auth_trusts_only_configured_proxies(start_server):
    trusted = plugin_server(start_server, plugin_entry(
        "proxy", HEADER_AUTH, config={"trusted_proxies": ["127.0.0.1/32"]}))
    bucket = unique_name("hdr")
    h = {"X-Forwarded-User": "bob", "X-Forwarded-Groups": "eng, ops"}
    assert requests.put(f"{trusted.endpoint}/{bucket}", headers=h).status_code == 200
    r = requests.put(f"{trusted.endpoint}/{bucket}/k", data=b"via proxy", headers=h)
    assert r.status_code == 200, r.text
    assert requests.get(f"{trusted.endpoint}/{bucket}/k", headers=h).content == b"via proxy"
    listing = requests.get(f"{trusted.endpoint}/", headers=h).text
    assert "<ID>proxy:bob</ID>" in listing and "<DisplayName>bob</DisplayName>" in listing
    # Another identity does not own bob's bucket; no header is anonymous.
    assert requests.get(f"{trusted.endpoint}/{bucket}/k",
                        headers={"X-Forwarded-User": "eve"}).status_code == 403
    assert requests.get(f"{trusted.endpoint}/{bucket}/k").status_code == 403

    # The identity header twice (a proxy that appends the client's copy) proves nothing.
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", trusted.port, timeout=30)
    conn.putrequest("GET", "/")
    conn.putheader("X-Forwarded-User", "eve")
    conn.putheader("X-Forwarded-User", "bob")
    conn.endheaders()
    assert conn.getresponse().status == 403
    conn.close()

    untrusted = plugin_server(start_server, plugin_entry(
        "proxy", HEADER_AUTH, config={"trusted_proxies": ["10.0.0.0/8"]}))
    r = requests.put(f"{untrusted.endpoint}/{unique_name('hdr')}", headers=h)
    assert r.status_code == 403


# -- hot reload -------------------------------------------------------------------------------

def with_custom_section(wasm: bytes, tag: bytes) -> bytes:
    """The same component with a custom section appended: a new file, the same behaviour."""
    name = b"sluice-test"
    payload = bytes([len(name)]) + name + tag
    size = len(payload)
    leb = bytearray()
    while True:
        b = size & 0x7F
        size >>= 7
        leb.append(b | (0x80 if size else 0))
        if not size:
            break
    return wasm + b"\x00" + bytes(leb) + payload


def replace_file(path, data: bytes):
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def test_reload_under_load_fails_no_request_and_broken_replacement_is_refused(start_server, tmp_path):
    plugin = tmp_path / "keys.wasm"
    original = STATIC_KEYS.read_bytes()
    plugin.write_bytes(original)
    srv = plugin_server(start_server, static_keys(path=plugin, limits={"cache_ttl_secs": 0}))
    failures, done = [], threading.Event()
    count = [0]

    def load():
        s3 = s3_client(srv.endpoint, ALICE["access_key"], ALICE["secret_key"])
        while not done.is_set():
            try:
                s3.list_buckets()
                count[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                failures.append(repr(e))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        first = admin_plugins(srv)["static-keys"]
        for i in range(2):
            replace_file(plugin, with_custom_section(original, b"v%d" % i))
            deadline = time.monotonic() + 20
            while admin_plugins(srv)["static-keys"]["reloads"] < i + 1:
                assert time.monotonic() < deadline, "plugin was not reloaded"
                time.sleep(0.2)
        # A broken replacement is refused; the running version keeps serving.
        replace_file(plugin, b"\0asm broken")
        deadline = time.monotonic() + 20
        while admin_plugins(srv)["static-keys"]["reload_failures"] < 1:
            assert time.monotonic() < deadline, "broken replacement was not noticed"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        done.set()
        for w in workers:
            w.join(30)
    assert not failures, failures[:5]
    assert count[0] > 20
    after = admin_plugins(srv)["static-keys"]
    assert after["reloads"] == 2
    assert after["last_reload_error"] and "static-keys" in after["last_reload_error"]
    assert after["calls"] > first["calls"]
    srv.client(ALICE["access_key"], ALICE["secret_key"]).list_buckets()
    assert "reload refused" in srv.stderr_text()

    # SIGHUP reloads even an unchanged file, once it is valid again.
    replace_file(plugin, original)
    deadline = time.monotonic() + 20
    while admin_plugins(srv)["static-keys"]["reloads"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while admin_plugins(srv)["static-keys"]["reloads"] < 4:
        assert time.monotonic() < deadline, "SIGHUP did not reload"
        time.sleep(0.2)
    assert admin_plugins(srv)["static-keys"]["last_reload_error"] is None
