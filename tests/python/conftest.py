"""Fixtures: one shared server for most tests, extra servers on demand, unique buckets, users."""

from __future__ import annotations

import itertools

import pytest

from support.server import DOMAIN, SluiceServer
from support.util import empty_and_delete, unique_name


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = SluiceServer(tmp_path_factory.mktemp("main-server"), domains=DOMAIN)
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def s3(server):
    """boto3 S3 client signed as root, path-style."""
    return server.client()


@pytest.fixture(scope="session")
def raw(server):
    """Raw SigV4 client signed as root."""
    return server.raw()


@pytest.fixture
def make_bucket(s3):
    made = []

    def make(client=None, name=None):
        client = client or s3
        name = name or unique_name("b")
        client.create_bucket(Bucket=name)
        made.append(name)
        return name

    yield make
    for name in made:
        empty_and_delete(s3, name)  # root may do everything, whoever owns the bucket


@pytest.fixture
def bucket(make_bucket):
    return make_bucket()


@pytest.fixture
def start_server(tmp_path):
    """Factory for extra servers with their own data dir; all stopped at teardown."""
    servers: list[SluiceServer] = []
    counter = itertools.count()

    def start(*, start: bool = True, **kwargs) -> SluiceServer:
        srv = SluiceServer(tmp_path / f"srv{next(counter)}", **kwargs)
        servers.append(srv)
        if start:
            try:
                srv.start()
            except RuntimeError as e:
                pytest.fail(str(e), pytrace=False)
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture(scope="session")
def make_user(server):
    """Create an IAM user on the shared server through the admin API; returns the JSON printed
    by `sluice admin user create` (name, id, access_key, secret_key)."""

    def make(prefix: str = "u") -> dict:
        name = unique_name(prefix)
        return server.admin_json("user", "create", name)

    return make
