"""Authorizer plugins (issue 6 item 7): consulted after Cedar allowed, in order; any deny wins
and is logged while the client sees AccessDenied; a broken authorizer fails its requests
closed and the server keeps serving. `time-window` is the shipped example."""

from __future__ import annotations

import time

import botocore.exceptions
import pytest

from support.plugins import DIST, FIXTURES, admin_plugins, plugin_entry, plugin_server
from support.util import expect_error

pytestmark = pytest.mark.auth

TIME_WINDOW = DIST / "time_window.wasm"
HOSTILE_AUTHORIZER = FIXTURES / "hostile_authorizer.wasm"


def window_server(start_server, start_hour, end_hour):
    return plugin_server(start_server, plugin_entry(
        "time-window", TIME_WINDOW, world="authorizer",
        config={"windows": [{"bucket": "reports", "start_hour": start_hour, "end_hour": end_hour}]}))


def test_time_window_denies_writes_outside_the_hours(start_server):
    hour = time.gmtime().tm_hour
    # A window that closed an hour ago and opens in an hour: now is outside it.
    closed = window_server(start_server, (hour + 1) % 24, hour)
    s3 = closed.client()
    s3.create_bucket(Bucket="reports")
    s3.create_bucket(Bucket="other")
    e = expect_error(403, "AccessDenied", s3.put_object, Bucket="reports", Key="k", Body=b"x")
    assert "AccessDenied" in str(e)
    assert "not allowed at" in closed.stderr_text() and "authorizer plugin denied" in closed.stderr_text()
    s3.put_object(Bucket="other", Key="k", Body=b"x")  # other buckets are not limited
    s3.list_objects_v2(Bucket="reports")  # reads never are
    closed.stop()
    # The window that contains the current hour lets the same write through.
    open_ = window_server(start_server, hour, (hour + 1) % 24)
    c = open_.client()
    c.create_bucket(Bucket="reports")
    c.put_object(Bucket="reports", Key="k", Body=b"x")
    assert c.get_object(Bucket="reports", Key="k")["Body"].read() == b"x"


def test_any_deny_wins_and_only_after_cedar_allowed(start_server, tmp_path):
    srv = plugin_server(
        start_server,
        plugin_entry("open", TIME_WINDOW, world="authorizer", config={"windows": []}),
        plugin_entry("deny-writes", HOSTILE_AUTHORIZER, world="authorizer", config={"mode": "deny-writes"}),
    )
    s3 = srv.client()
    s3.create_bucket(Bucket="bkt")
    expect_error(403, "AccessDenied", s3.put_object, Bucket="bkt", Key="trigger", Body=b"x")
    assert "is refused by the fixture" in srv.stderr_text()
    s3.put_object(Bucket="bkt", Key="plain", Body=b"x")  # the fixture only refuses trigger*
    assert s3.get_object(Bucket="bkt", Key="plain")["Body"].read() == b"x"
    # Cedar decides first: anonymous requests are denied without consulting the plugins.
    before = admin_plugins(srv)["deny-writes"]["calls"]
    r = srv.raw().request("GET", "/bkt/plain", sign=False)
    assert r.status == 403
    # Only the listing request itself (signed by root, allowed by Cedar) consulted it again.
    assert admin_plugins(srv)["deny-writes"]["calls"] == before + 1


@pytest.mark.parametrize("mode, expected", [
    ("loop", "ServiceUnavailable"),
    ("alloc", "AccessDenied"),
    ("trap", "AccessDenied"),
    ("huge", "AccessDenied"),
])
def test_hostile_authorizer_fails_closed(start_server, mode, expected):
    cpu_ms = 200 if mode == "loop" else 3000
    srv = plugin_server(start_server, plugin_entry(
        "hostile", HOSTILE_AUTHORIZER, world="authorizer", config={"mode": mode},
        limits={"cpu_ms": cpu_ms, "memory_mb": 32}))
    s3 = srv.client()
    s3.create_bucket(Bucket="bkt")  # the fixture misbehaves on trigger* keys only
    started = time.monotonic()
    try:
        s3.put_object(Bucket="bkt", Key="trigger", Body=b"x")
        code = None
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
    assert code == expected
    assert time.monotonic() - started < 5.0
    # The same plugin keeps answering requests it handles well, and the server is alive.
    s3.put_object(Bucket="bkt", Key="fine/1", Body=b"x")
    assert srv.proc.poll() is None
    assert admin_plugins(srv)["hostile"]["errors"] >= 1


def test_hostile_authorizer_http_outside_allowed_hosts(start_server):
    srv = plugin_server(start_server, plugin_entry(
        "hostile", HOSTILE_AUTHORIZER, world="authorizer",
        config={"mode": "http", "url": "http://127.0.0.1:9/"}))
    s3 = srv.client()
    s3.create_bucket(Bucket="bkt")
    expect_error(503, "ServiceUnavailable", s3.put_object, Bucket="bkt", Key="trigger", Body=b"x")
    assert admin_plugins(srv)["hostile"]["denied_http_requests"] >= 1
