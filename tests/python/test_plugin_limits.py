"""Hostile plugins (tests/plugins/hostile, one component whose config picks the misbehaviour):
each fails only its own request, within its deadline, with AccessDenied (closed) or 503 (where
transient); the server keeps serving everyone else, memory does not grow, and the plugin's
error counters show what happened."""

import threading
import time

import botocore.exceptions
import pytest

from support.plugins import (
    HOSTILE, STATIC_KEYS, BlackHole, LoopbackHttp, admin_plugins, plugin_entry, plugin_server,
    rss_kib,
)
from support.server import s3_client

pytestmark = pytest.mark.auth

KEYS = [{"access_key": "AKGOODSTATICKEY01", "secret_key": "good-static-secret-01", "subject": "good"}]


def hostile_server(start_server, mode, failure=None, limits=None, **config):
    return plugin_server(
        start_server,
        plugin_entry("keys", STATIC_KEYS, config={"keys": KEYS}),
        plugin_entry("hostile", HOSTILE, config={"mode": mode, **config}, failure=failure,
                     limits=limits, allowed_hosts=config.pop("allowed", None)),
    )


def attempt(srv, access_key="AKUNKNOWNTOEVERYONE"):
    """An unknown key reaches the hostile plugin; returns (error code, seconds)."""
    started = time.monotonic()
    try:
        srv.client(access_key, "irrelevant-secret-000").list_buckets()
        code = None
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
    return code, time.monotonic() - started


def others_still_served(srv):
    srv.client().list_buckets()  # root (IAM store)
    srv.client(KEYS[0]["access_key"], KEYS[0]["secret_key"]).list_buckets()  # plugin before it
    # The same hostile instance answers well-formed calls (SAFE* keys) afterwards.
    srv.client("SAFEKEY0001", "safe-secret-key").list_buckets()


@pytest.mark.parametrize("mode, expected, deadline", [
    ("loop", "ServiceUnavailable", 5.0),
    ("alloc", "AccessDenied", 5.0),
    ("trap", "AccessDenied", 5.0),
    ("huge", "AccessDenied", 5.0),
])
def test_hostile_plugin_fails_only_its_request(start_server, mode, expected, deadline):
    # Only the loop should meet the CPU limit: the others get room even on a busy machine.
    cpu_ms = 200 if mode == "loop" else 3000
    srv = hostile_server(start_server, mode, limits={"cpu_ms": cpu_ms, "memory_mb": 32})
    code, took = attempt(srv)
    assert code == expected
    assert took < deadline, f"{mode} took {took:.1f}s"
    others_still_served(srv)
    info = admin_plugins(srv)["hostile"]
    assert info["errors"] >= 1 and info["traps"] >= 1, info
    if mode == "loop":
        assert "exceeded its CPU time limit" in srv.stderr_text()
    assert srv.proc.poll() is None


def test_memory_does_not_grow_under_hostile_calls(start_server):
    srv = hostile_server(start_server, "alloc", limits={"memory_mb": 48, "cpu_ms": 3000})
    for _ in range(5):
        attempt(srv)
    baseline = rss_kib(srv.proc.pid)
    for _ in range(40):
        code, _ = attempt(srv)
        assert code == "AccessDenied"
    grown = rss_kib(srv.proc.pid) - baseline
    # 40 instances each filled 48 MiB; what is left behind must be far less than one of them.
    assert grown < 32 * 1024, f"RSS grew by {grown} KiB"
    assert admin_plugins(srv)["hostile"]["errors"] >= 45
    others_still_served(srv)


def test_disallowed_host_is_never_contacted(start_server):
    target = LoopbackHttp({"/": b"{}"})
    try:
        srv = hostile_server(start_server, "http", url=target.url("/"), allowed=["example.invalid"])
        code, _ = attempt(srv)
        assert code in ("ServiceUnavailable", "AccessDenied")
        assert target.hits == []
        info = admin_plugins(srv)["hostile"]
        assert info["denied_http_requests"] >= 1 and info["errors"] >= 1
        others_still_served(srv)
    finally:
        target.close()


def test_wall_clock_timeout_bounds_waits_on_http(start_server):
    hole = BlackHole()
    try:
        srv = hostile_server(start_server, "slow-http", url=f"http://{hole.authority}/",
                             allowed=[hole.authority], limits={"timeout_ms": 1000})
        code, took = attempt(srv)
        assert code == "ServiceUnavailable"
        assert 0.9 < took < 5, took
        assert admin_plugins(srv)["hostile"]["timeouts"] >= 1
        others_still_served(srv)
    finally:
        hole.close()


def test_failing_open_skips_the_plugin_but_never_allows(start_server):
    srv = plugin_server(
        start_server,
        plugin_entry("hostile", HOSTILE, config={"mode": "trap"}, failure="open"),
        plugin_entry("keys", STATIC_KEYS, config={"keys": KEYS}),
    )
    # The trapping plugin is skipped and the next one answers.
    srv.client(KEYS[0]["access_key"], KEYS[0]["secret_key"]).list_buckets()
    # A key nobody knows is still unknown: failing open is never an allow.
    code, _ = attempt(srv)
    assert code == "InvalidAccessKeyId"


def test_hostile_plugin_under_concurrency_does_not_stall_others(start_server):
    srv = hostile_server(start_server, "loop", limits={"cpu_ms": 100, "instances": 2})
    stop = threading.Event()
    results = []

    def hammer():
        while not stop.is_set():
            results.append(attempt(srv)[0])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        good = s3_client(srv.endpoint, srv.access_key, srv.secret_key)
        started = time.monotonic()
        for _ in range(20):
            good.list_buckets()
        assert time.monotonic() - started < 20
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results and set(results) == {"ServiceUnavailable"}


def test_oversized_output_is_refused_even_when_memory_allows_it(start_server):
    # With room for the 100 MB string, the host lifts it, refuses it as bad output, frees it.
    srv = hostile_server(start_server, "huge",
                         limits={"memory_mb": 256, "cpu_ms": 5000, "timeout_ms": 10000})
    attempt(srv)
    baseline = rss_kib(srv.proc.pid)
    for _ in range(5):
        code, took = attempt(srv)
        assert code == "AccessDenied" and took < 10
    assert rss_kib(srv.proc.pid) - baseline < 150 * 1024
    assert "bad output" in srv.stderr_text()
    info = admin_plugins(srv)["hostile"]
    assert info["errors"] >= 6 and info["traps"] == 0
    others_still_served(srv)
