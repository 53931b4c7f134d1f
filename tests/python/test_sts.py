"""STS on the S3 endpoint: roles with Cedar trust conditions, AssumeRoleWithWebIdentity with
a token the oidc plugin verifies, AssumeRole for IAM users, and the temporary credentials used
by boto3 (session token required, revocation ends them, presigned URLs end with them)."""

import json

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.config import Config

from support.jwts import AUDIENCE, ISSUER, SigningKey, jwks
from support.plugins import OIDC, plugin_entry
from support.server import SluiceServer, s3_client
from support.util import unique_name

pytestmark = pytest.mark.auth

KEY = SigningKey("RS256")


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sts-server")
    srv = SluiceServer(root)
    cfg = root / "plugins.toml"
    cfg.write_text(plugin_entry("idp", OIDC, config={
        "issuer": ISSUER, "audience": AUDIENCE, "jwks": json.loads(jwks(KEY))}))
    srv.args = ["--config", str(cfg)]
    srv.start()
    srv.admin_json("role", "create", "engineers", "--trust",
                   'principal.plugin == "idp" && principal.groups.contains("eng")')
    yield srv
    srv.stop()


def sts(srv, access_key=None, secret_key=None):
    return boto3.session.Session().client(
        "sts", endpoint_url=srv.endpoint, region_name=srv.region,
        aws_access_key_id=access_key or "unused", aws_secret_access_key=secret_key or "unused",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


ROLE_ARN = "arn:aws:iam::sluice:role/engineers"


def web_identity(srv, token, **kw):
    return sts(srv).assume_role_with_web_identity(
        RoleArn=kw.pop("RoleArn", ROLE_ARN), RoleSessionName=kw.pop("RoleSessionName", "ci-run"),
        WebIdentityToken=token, **kw)


def session_client(srv, creds):
    return boto3.session.Session().client(
        "s3", endpoint_url=srv.endpoint, region_name=srv.region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                      retries={"max_attempts": 1, "mode": "standard"}))


def sts_error(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_role_admin_commands(sts_server):
    listed = sts_server.admin_json("role", "list")
    assert [r["name"] for r in listed] == ["engineers"]
    shown = sts_server.admin_json("role", "show", "engineers")
    assert shown["arn"] == ROLE_ARN and len(shown["id"]) == 64
    bad = sts_server.admin("role", "create", "broken", "--trust", "principal.plugin ==", check=False)
    assert bad.returncode != 0 and "Cedar" in bad.stderr
    smuggle = sts_server.admin("role", "create", "smuggle", "--trust",
                               "false }; permit(principal, action, resource) when { true",
                               check=False)
    assert smuggle.returncode != 0
    missing = sts_server.admin("role", "show", "nope", check=False)
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr


def test_web_identity_credentials_work_with_boto3(sts_server):
    resp = web_identity(sts_server, KEY.token("carol", groups=["eng"]), DurationSeconds=1800)
    creds = resp["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert resp["AssumedRoleUser"]["Arn"] == "arn:aws:sts::sluice:assumed-role/engineers/ci-run"
    assert resp["SubjectFromWebIdentityToken"] == "carol"
    import datetime
    remaining = creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
    assert 1700 < remaining.total_seconds() <= 1800, remaining

    s3 = session_client(sts_server, creds)
    bucket = unique_name("sts")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"temporary")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"temporary"
    owner = s3.list_buckets()["Owner"]
    role = sts_server.admin_json("role", "show", "engineers")
    assert owner == {"ID": role["id"], "DisplayName": "engineers"}
    # A second session of the same role acts as the same role.
    other = session_client(sts_server, web_identity(
        sts_server, KEY.token("dan", groups=["eng"]), RoleSessionName="other")["Credentials"])
    assert other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"temporary"


def test_session_token_is_required_and_checked(sts_server):
    creds = web_identity(sts_server, KEY.token("carol", groups=["eng"]))["Credentials"]
    without = s3_client(sts_server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        without.list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidToken"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    forged = dict(creds, SessionToken="SLUICE" + "A" * 64)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session_client(sts_server, forged).list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidToken"


def test_trust_condition_and_token_are_enforced(sts_server):
    assert sts_error(lambda: web_identity(sts_server, KEY.token("mallory", groups=["sales"]))) == "AccessDenied"
    assert sts_error(lambda: web_identity(sts_server, KEY.token("carol", groups=["eng"], ttl=-120))) == "InvalidIdentityToken"
    assert sts_error(lambda: web_identity(sts_server, SigningKey("RS256", kid=KEY.kid).token(groups=["eng"]))) == "InvalidIdentityToken"
    assert sts_error(lambda: web_identity(sts_server, KEY.token(groups=["eng"]),
                                          RoleArn="arn:aws:iam::sluice:role/nope")) == "AccessDenied"


@pytest.mark.parametrize("duration", [899, 43201])
def test_duration_outside_900_to_43200_is_refused(sts_server, duration):
    # Sent as a raw form: botocore itself refuses values under 900 before sending.
    r = requests.post(sts_server.endpoint, data={
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
        "RoleSessionName": "ci", "WebIdentityToken": KEY.token(groups=["eng"]),
        "DurationSeconds": str(duration)})
    assert r.status_code == 400
    assert "<Code>ValidationError</Code>" in r.text and "<Type>Sender</Type>" in r.text


def test_longest_duration_is_accepted(sts_server):
    creds = web_identity(sts_server, KEY.token(groups=["eng"]), DurationSeconds=43200)["Credentials"]
    session_client(sts_server, creds).list_buckets()


def test_revoked_sessions_and_their_presigned_urls_expire(sts_server, tmp_path):
    sts_server.admin_json("role", "create", "temp", "--trust", "true")
    creds = web_identity(sts_server, KEY.token("carol"), RoleArn="arn:aws:iam::sluice:role/temp")["Credentials"]
    s3 = session_client(sts_server, creds)
    bucket = unique_name("rev")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    # Presigned for a week, but it can live no longer than the session that signed it.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                    ExpiresIn=604800)
    assert requests.get(url).content == b"x"
    revoked = sts_server.admin_json("role", "revoke-sessions", "temp")
    assert revoked["sessions_revoked"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_buckets()
    assert e.value.response["Error"]["Code"] == "ExpiredToken"
    r = requests.get(url)
    assert r.status_code == 400 and "<Code>ExpiredToken</Code>" in r.text
    sts_server.client().delete_object(Bucket=bucket, Key="k")
    sts_server.client().delete_bucket(Bucket=bucket)


def test_assume_role_for_iam_users(sts_server):
    user = sts_server.admin_json("user", "create", unique_name("u"))
    sts_server.admin_json("role", "create", "user-role", "--trust",
                          f'principal.name == "{user["name"]}"')
    client = sts(sts_server, user["access_key"], user["secret_key"])
    resp = client.assume_role(RoleArn="arn:aws:iam::sluice:role/user-role", RoleSessionName="batch")
    s3 = session_client(sts_server, resp["Credentials"])
    s3.list_buckets()
    assert resp["AssumedRoleUser"]["Arn"].endswith("assumed-role/user-role/batch")
    # Another user is not trusted; a bad signature is refused; root may not assume roles.
    other = sts_server.admin_json("user", "create", unique_name("u"))
    assert sts_error(lambda: sts(sts_server, other["access_key"], other["secret_key"]).assume_role(
        RoleArn="arn:aws:iam::sluice:role/user-role", RoleSessionName="batch")) == "AccessDenied"
    assert sts_error(lambda: sts(sts_server, user["access_key"], "wrong-secret").assume_role(
        RoleArn="arn:aws:iam::sluice:role/user-role", RoleSessionName="batch")) == "SignatureDoesNotMatch"
    assert sts_error(lambda: sts(sts_server, sts_server.access_key, sts_server.secret_key).assume_role(
        RoleArn="arn:aws:iam::sluice:role/user-role", RoleSessionName="batch")) == "AccessDenied"


def test_sts_secrets_are_sealed_at_rest(sts_server):
    creds = web_identity(sts_server, KEY.token(groups=["eng"]))["Credentials"]
    raw = (sts_server.data_dir / "meta.redb").read_bytes()
    assert creds["SecretAccessKey"].encode() not in raw
    assert creds["SessionToken"].encode() not in raw


def test_unsupported_parameters_are_refused_not_ignored(sts_server):
    # A session policy narrows a role; silently dropping it would widen the session.
    r = requests.post(sts_server.endpoint, data={
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
        "RoleSessionName": "ci", "WebIdentityToken": KEY.token(groups=["eng"]),
        "Policy": '{"Version":"2012-10-17","Statement":[]}'})
    assert r.status_code == 400 and "<Code>ValidationError</Code>" in r.text


def test_unsigned_assume_role_is_missing_authentication(sts_server):
    r = requests.post(sts_server.endpoint, data={
        "Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
        "RoleSessionName": "ci"})
    assert r.status_code == 403 and "<Code>MissingAuthenticationToken</Code>" in r.text
    r = requests.post(sts_server.endpoint, data={"Action": "GetFederationToken"})
    assert r.status_code == 400 and "<Code>InvalidAction</Code>" in r.text
