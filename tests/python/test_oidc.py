"""The oidc plugin: bearer JWTs (RS256, ES256) checked against a JWKS fetched over wasi:http
from a loopback issuer (cached, refetched on an unknown kid), or given inline."""

import time

import pytest
import requests

from support.jwts import AUDIENCE, ISSUER, SigningKey, jwks
from support.plugins import OIDC, LoopbackHttp, admin_plugins, plugin_entry, plugin_server
from support.util import unique_name

pytestmark = pytest.mark.auth


@pytest.fixture(scope="module")
def idp():
    rsa_key, ec_key = SigningKey("RS256"), SigningKey("ES256")
    server = LoopbackHttp({"/jwks.json": jwks(rsa_key, ec_key)})
    server.rsa, server.ec = rsa_key, ec_key
    yield server
    server.close()


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory, idp):
    from support.server import SluiceServer
    root = tmp_path_factory.mktemp("oidc-server")
    srv = SluiceServer(root)
    cfg = root / "plugins.toml"
    cfg.write_text(plugin_entry(
        "idp", OIDC, allowed_hosts=[idp.authority],
        config={"issuer": ISSUER, "audience": [AUDIENCE], "jwks_uri": idp.url("/jwks.json"),
                "groups_claim": "groups", "leeway_seconds": 5, "refetch_interval_seconds": 1}))
    srv.args = ["--config", str(cfg)]
    srv.start()
    yield srv
    srv.stop()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_rs256_and_es256_tokens_authenticate(oidc_server, idp):
    token = idp.rsa.token("carol", preferred_username="Carol", groups=["eng"])
    bucket = unique_name("jwt")
    r = requests.put(f"{oidc_server.endpoint}/{bucket}", headers=bearer(token))
    assert r.status_code == 200, r.text
    r = requests.put(f"{oidc_server.endpoint}/{bucket}/obj", data=b"jwt body", headers=bearer(token))
    assert r.status_code == 200, r.text
    r = requests.get(f"{oidc_server.endpoint}/{bucket}/obj", headers=bearer(token))
    assert r.content == b"jwt body"
    listing = requests.get(f"{oidc_server.endpoint}/", headers=bearer(token)).text
    assert "<ID>idp:carol</ID>" in listing and "<DisplayName>Carol</DisplayName>" in listing
    # The same subject signed by the EC key is the same principal.
    ec_token = idp.ec.token("carol")
    r = requests.get(f"{oidc_server.endpoint}/{bucket}/obj", headers=bearer(ec_token))
    assert r.status_code == 200 and r.content == b"jwt body"
    # Another subject does not own carol's bucket.
    other = idp.rsa.token("dave")
    assert requests.get(f"{oidc_server.endpoint}/{bucket}/obj", headers=bearer(other)).status_code == 403


@pytest.mark.parametrize("case", [
    "expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "foreign-key", "alg-none",
    "garbage", "no-sub",
])
def test_bad_tokens_are_denied(oidc_server, idp, case):
    now = int(time.time())
    if case == "expired":
        token = idp.rsa.token(ttl=-60)
    elif case == "not-yet-valid":
        token = idp.rsa.token(nbf=now + 3600)
    elif case == "wrong-audience":
        token = idp.rsa.token(aud="someone-else")
    elif case == "wrong-issuer":
        token = idp.rsa.token(iss="https://evil.example")
    elif case == "foreign-key":
        # Signed by a key the issuer never published, claiming the issuer's kid.
        token = SigningKey("RS256").token(kid=idp.rsa.kid)
    elif case == "alg-none":
        import jwt
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60}, None,
                           algorithm="none", headers={"kid": idp.rsa.kid})
    elif case == "garbage":
        token = "not.a.jwt"
    else:
        import jwt
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60}, idp.rsa.private,
                           algorithm="RS256", headers={"kid": idp.rsa.kid})
    r = requests.get(f"{oidc_server.endpoint}/", headers=bearer(token))
    assert r.status_code == 403, (case, r.text)
    assert "<Code>AccessDenied</Code>" in r.text


def test_jwks_is_cached_and_refetched_for_a_new_kid(oidc_server, idp):
    requests.get(f"{oidc_server.endpoint}/", headers=bearer(idp.rsa.token()))
    fetched = len(idp.hits)
    assert fetched >= 1
    for _ in range(10):
        r = requests.get(f"{oidc_server.endpoint}/", headers=bearer(idp.rsa.token()))
        assert r.status_code == 200
    assert len(idp.hits) == fetched, "JWKS fetched again although cached"
    # The issuer rotates in a new key: a token with its kid makes the plugin fetch once more.
    rotated = SigningKey("ES256")
    idp.routes["/jwks.json"] = jwks(idp.rsa, idp.ec, rotated)
    time.sleep(1.1)  # unknown kids refetch at most once per refetch_interval_seconds
    r = requests.get(f"{oidc_server.endpoint}/", headers=bearer(rotated.token("erin")))
    assert r.status_code == 200, r.text
    assert len(idp.hits) == fetched + 1
    info = admin_plugins(oidc_server)["idp"]
    assert info["calls"] >= 12 and info["denied_http_requests"] == 0


def test_inline_jwks_needs_no_network(start_server):
    key = SigningKey("ES256")
    import json
    srv = plugin_server(start_server, plugin_entry(
        "inline", OIDC, config={"issuer": ISSUER, "audience": AUDIENCE,
                                "jwks": json.loads(jwks(key))}))
    r = requests.get(f"{srv.endpoint}/", headers=bearer(key.token("frank")))
    assert r.status_code == 200, r.text
    assert "<ID>inline:frank</ID>" in r.text
    assert admin_plugins(srv)["inline"]["denied_http_requests"] == 0


def test_unreachable_jwks_is_a_transient_failure(start_server):
    key = SigningKey("RS256")
    idp = LoopbackHttp({})
    authority = idp.authority
    idp.close()  # nobody listens there any more
    srv = plugin_server(start_server, plugin_entry(
        "down", OIDC, allowed_hosts=[authority],
        config={"issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": f"http://{authority}/jwks"}))
    r = requests.get(f"{srv.endpoint}/", headers=bearer(key.token()))
    assert r.status_code == 503, r.text
    assert "<Code>ServiceUnavailable</Code>" in r.text


def test_kept_tokens_still_expire_and_forgeries_are_verified_afresh(start_server):
    """A token that verified is kept by the instance and skips the signature check on later uses
    (one instance here, so every use after the first is served from what it kept). Kept or not,
    `exp` is checked on every use, and a token that differs only in its signature is verified
    in full and refused."""
    import json

    import jwt
    key = SigningKey("ES256")
    srv = plugin_server(start_server, plugin_entry(
        "kept", OIDC, limits={"instances": 1},
        config={"issuer": ISSUER, "audience": AUDIENCE, "jwks": json.loads(jwks(key)),
                "leeway_seconds": 0}))
    token = key.token("gina", ttl=3)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    for _ in range(3):
        r = requests.get(f"{srv.endpoint}/", headers=bearer(token))
        assert r.status_code == 200 and "<ID>kept:gina</ID>" in r.text, r.text
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{sig[:-6]}{'AAAAAA' if not sig.endswith('AAAAAA') else 'BBBBBB'}"
    r = requests.get(f"{srv.endpoint}/", headers=bearer(forged))
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    assert requests.get(f"{srv.endpoint}/", headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, exp + 1.2 - time.time()))
    r = requests.get(f"{srv.endpoint}/", headers=bearer(token))
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    # Turned off, the same plugin verifies every use in full and answers the same.
    off = plugin_server(start_server, plugin_entry(
        "uncached", OIDC, limits={"instances": 1},
        config={"issuer": ISSUER, "audience": AUDIENCE, "jwks": json.loads(jwks(key)),
                "verified_tokens": 0}))
    fresh = key.token("hank")
    for _ in range(2):
        r = requests.get(f"{off.endpoint}/", headers=bearer(fresh))
        assert r.status_code == 200 and "<ID>uncached:hank</ID>" in r.text, r.text


def test_a_withdrawn_key_stops_its_kept_tokens(start_server):
    """A token kept as verified is checked in full again once the instance takes up a new key
    set: when the issuer withdraws a key, its tokens stop as soon as the new JWKS is fetched,
    not when the kept entry would have run out."""
    old, new = SigningKey("ES256"), SigningKey("ES256")
    idp = LoopbackHttp({"/jwks.json": jwks(old)})
    try:
        srv = plugin_server(start_server, plugin_entry(
            "rot", OIDC, allowed_hosts=[idp.authority], limits={"instances": 1},
            config={"issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": idp.url("/jwks.json"),
                    "jwks_cache_seconds": 3600, "refetch_interval_seconds": 1}))
        token = old.token("ivan")
        for _ in range(2):
            assert requests.get(f"{srv.endpoint}/", headers=bearer(token)).status_code == 200
        # The issuer rotates: the old key is withdrawn. A token with the new kid makes the
        # plugin fetch the new set.
        idp.routes["/jwks.json"] = jwks(new)
        time.sleep(1.1)  # unknown kids refetch at most once per refetch_interval_seconds
        r = requests.get(f"{srv.endpoint}/", headers=bearer(new.token("judy")))
        assert r.status_code == 200, r.text
        r = requests.get(f"{srv.endpoint}/", headers=bearer(token))
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    finally:
        idp.close()
