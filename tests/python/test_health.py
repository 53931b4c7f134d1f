"""Issue item 10: liveness and readiness endpoints."""

import pytest
import requests


@pytest.mark.parametrize("probe", ["live", "ready"])
def test_health_probe_returns_json_with_version(server, probe):
    r = requests.get(f"{server.endpoint}/_sluice/health/{probe}", timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("version"), str) and body["version"], body


def test_health_needs_no_credentials_but_s3_does(server):
    """The probes answer anonymous callers; the S3 API next to them does not."""
    assert requests.get(f"{server.endpoint}/_sluice/health/live", timeout=5).status_code == 200
    assert requests.get(f"{server.endpoint}/", timeout=5).status_code == 403
