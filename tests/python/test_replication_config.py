"""Replication configuration (issue 8, item 1): `[[replication_targets]]` in the config and
Put/Get/DeleteBucketReplication with the AWS XML, destinations written
`arn:sluice:replication::TARGET:BUCKET`. (The queue and workers that act on the rules come
next.)"""

from __future__ import annotations

import pytest

from support.plugins import FIXTURES, plugin_entry, plugin_server
from support.util import expect_error

TARGET_PLUGIN = FIXTURES / "hostile_target.wasm"

TARGETS = (
    '[[replication_targets]]\nname = "dr"\nplugin = "target"\nendpoint = "http://127.0.0.1:1"\n'
)


def replication_server(start_server, extra: str = TARGETS, start: bool = True):
    return plugin_server(start_server, plugin_entry("target", TARGET_PLUGIN, world="replication-target"),
                         extra, start=start)


def rule(rid, prio, dest="arn:sluice:replication::dr:backup", **kw):
    r = {"ID": rid, "Priority": prio, "Status": "Enabled", "Filter": kw.pop("Filter", {"Prefix": ""}),
         "DeleteMarkerReplication": {"Status": kw.pop("deletes", "Disabled")},
         "Destination": {"Bucket": dest}}
    r.update(kw)
    return r


def test_put_get_delete_bucket_replication(start_server):
    srv = replication_server(start_server)
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    expect_error(404, "ReplicationConfigurationNotFoundError", s3.get_bucket_replication,
                 Bucket="src-bucket")
    config = {"Role": "arn:aws:iam::123456789012:role/ignored", "Rules": [
        rule("logs", 2, Filter={"Prefix": "logs/"}, deletes="Enabled"),
        rule("tagged", 1, Filter={"And": {"Prefix": "img/", "Tags": [{"Key": "k", "Value": "v"}]}}),
        rule("one-tag", 3, Filter={"Tag": {"Key": "t", "Value": "u"}}),
    ]}
    s3.put_bucket_replication(Bucket="src-bucket", ReplicationConfiguration=config)
    got = s3.get_bucket_replication(Bucket="src-bucket")["ReplicationConfiguration"]
    assert got["Role"] == config["Role"]
    rules = {r["ID"]: r for r in got["Rules"]}
    assert rules["logs"]["Filter"] == {"Prefix": "logs/"} and rules["logs"]["Priority"] == 2
    assert rules["logs"]["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rules["tagged"]["Filter"]["And"] == {"Prefix": "img/", "Tags": [{"Key": "k", "Value": "v"}]}
    assert rules["one-tag"]["Filter"] == {"Tag": {"Key": "t", "Value": "u"}}
    assert rules["logs"]["Destination"]["Bucket"] == "arn:sluice:replication::dr:backup"
    # A V1 rule (prefix at rule level, no priority) is kept as given.
    s3.put_bucket_replication(Bucket="src-bucket", ReplicationConfiguration={"Role": "", "Rules": [
        {"ID": "v1", "Prefix": "a/", "Status": "Disabled",
         "Destination": {"Bucket": "arn:sluice:replication::dr:backup"}}]})
    v1 = s3.get_bucket_replication(Bucket="src-bucket")["ReplicationConfiguration"]["Rules"][0]
    assert v1["Prefix"] == "a/" and v1["Status"] == "Disabled"
    s3.delete_bucket_replication(Bucket="src-bucket")
    expect_error(404, "ReplicationConfigurationNotFoundError", s3.get_bucket_replication,
                 Bucket="src-bucket")


@pytest.mark.parametrize("rules, status, code", [
    ([rule("a", 1, dest="arn:aws:s3:::backup")], 400, "InvalidArgument"),
    ([rule("a", 1, dest="arn:sluice:replication::nowhere:backup")], 400, "InvalidArgument"),
    ([rule("a", 1), rule("b", 1)], 400, "InvalidRequest"),
    ([rule("a", 1), rule("a", 2)], 400, "InvalidRequest"),
    ([rule("a", 1, Status="Sometimes")], 400, "MalformedXML"),
    ([], 400, "MalformedXML"),
])
def test_bad_replication_configurations_are_refused(start_server, rules, status, code):
    srv = replication_server(start_server)
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    expect_error(status, code, s3.put_bucket_replication, Bucket="src-bucket",
                 ReplicationConfiguration={"Role": "", "Rules": rules})
    expect_error(404, "ReplicationConfigurationNotFoundError", s3.get_bucket_replication,
                 Bucket="src-bucket")


def test_only_principals_allowed_put_replication_configuration_may_change_it(start_server):
    srv = replication_server(start_server)
    s3 = srv.client()
    s3.create_bucket(Bucket="src-bucket")
    other = srv.admin_json("user", "create", "other")
    o = srv.client(other["access_key"], other["secret_key"])
    expect_error(403, "AccessDenied", o.put_bucket_replication, Bucket="src-bucket",
                 ReplicationConfiguration={"Role": "", "Rules": [rule("a", 1)]})
    expect_error(403, "AccessDenied", o.get_bucket_replication, Bucket="src-bucket")


@pytest.mark.parametrize("targets, key", [
    ('[[replication_targets]]\nname = "dr"\nplugin = "missing"\nendpoint = "http://h:1"\n',
     "replication_targets[0].plugin"),
    ('[[replication_targets]]\nname = "DR"\nplugin = "target"\nendpoint = "http://h:1"\n',
     "replication_targets[0].name"),
    ('[[replication_targets]]\nname = "dr"\nplugin = "target"\nendpoint = "ftp://h"\n',
     "replication_targets[0].endpoint"),
    (TARGETS + TARGETS, "replication_targets[1].name"),
])
def test_bad_targets_stop_start_up(start_server, targets, key):
    srv = replication_server(start_server, targets, start=False)
    srv.start(wait=False)
    assert srv.proc.wait(timeout=30) != 0
    assert key in srv.stderr_text()
