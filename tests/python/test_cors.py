"""Issue 4 item 4: Put/Get/DeleteBucketCors with AWS validation, preflight OPTIONS answered from
the bucket's rules (403 when none match, checked with curl too), Access-Control-* headers on
matching requests, and the server-wide default."""

import subprocess

import pytest
import requests

from support.s3raw import assert_s3_error, from_requests as as_response
from support.util import expect_error

RULES = {
    "CORSRules": [
        {
            "ID": "web",
            "AllowedOrigins": ["https://*.example.com"],
            "AllowedMethods": ["GET", "PUT"],
            "AllowedHeaders": ["x-amz-*", "content-type"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
    ]
}


def test_cors_configuration_round_trip(s3, bucket):
    expect_error(404, "NoSuchCORSConfiguration", s3.get_bucket_cors, Bucket=bucket)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0]["ID"] == "web"
    assert got[0]["AllowedOrigins"] == ["https://*.example.com"]
    assert got[0]["AllowedMethods"] == ["GET", "PUT"]
    assert got[0]["ExposeHeaders"] == ["ETag"] and got[0]["MaxAgeSeconds"] == 600
    s3.delete_bucket_cors(Bucket=bucket)
    expect_error(404, "NoSuchCORSConfiguration", s3.get_bucket_cors, Bucket=bucket)


@pytest.mark.parametrize(
    "rule",
    [
        {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]},
        {"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]},
    ],
    ids=["bad-method", "two-wildcards"],
)
def test_invalid_cors_rules_are_refused(s3, bucket, rule):
    expect_error(400, "InvalidRequest", s3.put_bucket_cors, Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})


def test_preflight_matches_rules(server, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    url = f"{server.endpoint}/{bucket}/obj"
    ok = requests.options(url, headers={
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-amz-date, content-type",
    }, timeout=30)
    assert ok.status_code == 200, ok.text
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PUT" in ok.headers["Access-Control-Allow-Methods"]
    assert "x-amz-date" in ok.headers["Access-Control-Allow-Headers"]
    assert ok.headers["Access-Control-Max-Age"] == "600"
    denied = requests.options(url, headers={
        "Origin": "https://evil.example.org", "Access-Control-Request-Method": "PUT",
    }, timeout=30)
    assert_s3_error(as_response(denied), 403, "AccessForbidden")
    bad_header = requests.options(url, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-custom",
    }, timeout=30)
    assert bad_header.status_code == 403


def test_preflight_with_curl_and_no_rules_is_403(server, bucket):
    cp = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "OPTIONS",
         "-H", "Origin: https://app.example.com", "-H", "Access-Control-Request-Method: GET",
         f"{server.endpoint}/{bucket}/k"],
        capture_output=True, text=True, timeout=30,
    )
    assert cp.stdout == "403", cp


def test_actual_request_gets_cors_headers(server, s3, raw, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    r = raw.request("GET", f"/{bucket}/k", headers={"Origin": "https://app.example.com"})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert r.header("Access-Control-Expose-Headers") == "ETag"
    other = raw.request("GET", f"/{bucket}/k", headers={"Origin": "https://nope.test"})
    assert other.header("Access-Control-Allow-Origin") is None


def test_server_wide_default_cors(start_server):
    srv = start_server(extra_env={"SLUICE_CORS_ORIGINS": "https://console.test"})
    srv.client().create_bucket(Bucket="consolebucket")
    ok = requests.options(f"{srv.endpoint}/consolebucket/x", headers={
        "Origin": "https://console.test", "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "authorization",
    }, timeout=30)
    assert ok.status_code == 200, ok.text
    assert ok.headers["Access-Control-Allow-Origin"] == "https://console.test"
    no = requests.options(f"{srv.endpoint}/consolebucket/x", headers={
        "Origin": "https://other.test", "Access-Control-Request-Method": "GET",
    }, timeout=30)
    assert no.status_code == 403


def test_actual_request_is_matched_on_access_control_request_method(raw, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://get.test"], "AllowedMethods": ["GET"]},
    ]})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    r = raw.request("PUT", f"/{bucket}/k2", body=b"y", headers={
        "Origin": "https://get.test", "Access-Control-Request-Method": "GET"})
    assert r.header("Access-Control-Allow-Origin") == "https://get.test"
