"""A small, explicit AWS Signature Version 4 signer for raw S3 requests.

boto3 covers the normal paths; this signer exists so tests can build requests boto3 would never
send (skewed clocks, wrong payload hashes, aws-chunked bodies, virtual-hosted Host headers).
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def uri_encode(value: str, safe: str = "") -> str:
    """RFC 3986 encoding as SigV4 wants it (unreserved characters stay, everything else %XX)."""
    return quote(value, safe=safe + "-_.~")


def encode_key_path(bucket: str | None, key: str | None = None) -> str:
    """Path-style request path for bucket/key, encoded the way the AWS SDKs encode it."""
    path = "/"
    if bucket:
        path += uri_encode(bucket)
        if key is not None:
            path += "/" + uri_encode(key, safe="/")
    elif key is not None:
        path += uri_encode(key, safe="/")
    return path


def canonical_query(query: list[tuple[str, str]]) -> str:
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


def amz_now(offset: _dt.timedelta = _dt.timedelta(0)) -> str:
    return (_dt.datetime.now(_dt.timezone.utc) + offset).strftime("%Y%m%dT%H%M%SZ")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


@dataclass
class Signed:
    headers: dict[str, str]
    signature: str
    key: bytes
    scope: str
    amz_date: str


def sign_headers(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    amz_date: str | None = None,
    service: str = "s3",
    scope_region: str | None = None,
    date_header: bool = False,
) -> Signed:
    """Return `headers` plus x-amz-date, x-amz-content-sha256 and Authorization.

    `path` is the exact (already encoded) request path that will be sent; S3 does not normalise it.
    `headers` must contain Host. Every header given is signed. With `date_header`, the time goes
    in a `Date` header (HTTP format) instead of x-amz-date, as SigV4 allows.
    """
    amz_date = amz_date or amz_now()
    out = dict(headers)
    if date_header:
        when = _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc)
        out["Date"] = email.utils.format_datetime(when, usegmt=True)
    else:
        out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    lower = {k.lower().strip(): " ".join(str(v).split()) for k, v in out.items()}
    names = sorted(lower)
    canonical_headers = "".join(f"{n}:{lower[n]}\n" for n in names)
    signed_headers = ";".join(names)
    creq = "\n".join(
        [method, path, canonical_query(query), canonical_headers, signed_headers, payload_hash]
    )
    date = amz_date[:8]
    scope = f"{date}/{scope_region or region}/{service}/aws4_request"
    sts = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret_key, date, scope_region or region, service)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={sig}"
    )
    return Signed(out, sig, key, scope, amz_date)


def presign_query(
    method: str,
    host: str,
    path: str,
    access_key: str,
    secret_key: str,
    region: str,
    expires: int | str,
    amz_date: str | None = None,
    extra_query: list[tuple[str, str]] | None = None,
) -> str:
    """Query string (already encoded) of a presigned URL signed with host only."""
    amz_date = amz_date or amz_now()
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    query = list(extra_query or []) + [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    creq = "\n".join(
        [method, path, canonical_query(query), f"host:{host}\n", "host", UNSIGNED_PAYLOAD]
    )
    sts = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret_key, amz_date[:8], region)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return canonical_query(query + [("X-Amz-Signature", sig)])


def signed_chunks(body: bytes, chunk_size: int, signed: Signed, tamper: bool = False) -> bytes:
    """aws-chunked body for STREAMING-AWS4-HMAC-SHA256-PAYLOAD, chained from the seed signature."""
    out = bytearray()
    prev = signed.signature
    pieces = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)] + [b""]
    for n, piece in enumerate(pieces):
        sts = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                signed.amz_date,
                signed.scope,
                prev,
                EMPTY_SHA256,
                hashlib.sha256(piece).hexdigest(),
            ]
        )
        sig = hmac.new(signed.key, sts.encode(), hashlib.sha256).hexdigest()
        if tamper and n == 0:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += f"{len(piece):x};chunk-signature={sig}\r\n".encode() + piece + b"\r\n"
        prev = sig
    return bytes(out)


def unsigned_trailer_chunks(body: bytes, chunk_size: int, trailer_name: str, trailer_value: str) -> bytes:
    """aws-chunked body for STREAMING-UNSIGNED-PAYLOAD-TRAILER, the way botocore frames it."""
    out = bytearray()
    for i in range(0, len(body), chunk_size):
        piece = body[i : i + chunk_size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    out += f"0\r\n{trailer_name}:{trailer_value}\r\n\r\n".encode()
    return bytes(out)
