"""Raw (optionally SigV4-signed) HTTP requests to the server, and S3 XML helpers."""

from __future__ import annotations

import hashlib
import http.client
import io
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterable

from . import sigv4


def strip_ns(elem: ET.Element) -> ET.Element:
    for e in elem.iter():
        if isinstance(e.tag, str) and "}" in e.tag:
            e.tag = e.tag.split("}", 1)[1]
    return elem


def parse_xml(body: bytes) -> ET.Element:
    return strip_ns(ET.fromstring(body))


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    raw_head: bytes = field(default=b"", repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def xml(self) -> ET.Element:
        return parse_xml(self.body)

    def __str__(self) -> str:  # shown in assertion messages
        return f"HTTP {self.status} {dict(self.headers)} {self.body[:600]!r}"


class _Headers(dict):
    """Case-insensitive header mapping with the .get() of http.client.HTTPMessage."""

    def __init__(self, headers):
        super().__init__({k.lower(): v for k, v in headers.items()})

    def get(self, name, default=None):
        return super().get(name.lower(), default)


def from_requests(r) -> Response:
    """Wrap a `requests` response so assert_s3_error can check it."""
    return Response(r.status_code, _Headers(r.headers), r.content)


def assert_s3_error(resp: Response, status: int, code: str | set[str]) -> ET.Element:
    """The response is an S3 <Error> document with Code, Message, Resource and RequestId,
    whose RequestId matches the x-amz-request-id header."""
    codes = {code} if isinstance(code, str) else set(code)
    assert resp.status == status, f"expected {status} {codes}, got {resp}"
    assert resp.body, f"error response without body: {resp}"
    root = resp.xml()
    assert root.tag == "Error", f"root element is {root.tag}: {resp}"
    got_code = root.findtext("Code")
    assert got_code in codes, f"expected Code in {codes}, got {got_code}: {resp}"
    assert root.findtext("Message"), f"empty Message: {resp}"
    assert root.find("Resource") is not None, f"no Resource element: {resp}"
    request_id = root.findtext("RequestId")
    assert request_id, f"no RequestId: {resp}"
    assert resp.header("x-amz-request-id") == request_id, (
        f"x-amz-request-id header {resp.header('x-amz-request-id')!r} != RequestId {request_id!r}"
    )
    return root


class RawS3:
    """Sends exactly the request it is given (path not normalised) to 127.0.0.1:port."""

    def __init__(self, port: int, access_key: str, secret_key: str, region: str = "us-east-1"):
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def with_keys(self, access_key: str, secret_key: str) -> "RawS3":
        return RawS3(self.port, access_key, secret_key, self.region)

    def build(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | dict | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        sign: bool = True,
        payload_hash: str | None = None,
        amz_date: str | None = None,
        host: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        scope_region: str | None = None,
        date_header: bool = False,
    ) -> tuple[str, dict[str, str], sigv4.Signed | None]:
        """Return (request target, headers, signing info)."""
        if isinstance(query, dict):
            query = list(query.items())
        query = query or []
        hdrs = {"Host": host or self.host}
        hdrs.update(headers or {})
        signed = None
        if sign:
            if payload_hash is None:
                payload_hash = hashlib.sha256(body).hexdigest()
            signed = sigv4.sign_headers(
                method,
                path,
                query,
                hdrs,
                payload_hash,
                access_key or self.access_key,
                secret_key or self.secret_key,
                self.region,
                amz_date=amz_date,
                scope_region=scope_region,
                date_header=date_header,
            )
            hdrs = signed.headers
        target = path + ("?" + sigv4.canonical_query(query) if query else "")
        return target, hdrs, signed

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | Iterable[bytes] = b"") -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            if isinstance(body, (bytes, bytearray)):
                conn.request(method, target, body=body if body or method in ("PUT", "POST") else None, headers=headers)
            else:
                conn.request(method, target, body=body, headers=headers, encode_chunked=True)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.headers, data)
        finally:
            conn.close()

    def request(self, method: str, path: str, *, body: bytes = b"", **kw) -> Response:
        target, headers, _ = self.build(method, path, body=body, **kw)
        return self.send(method, target, headers, body)

    def exchange(self, method: str, path: str, **kw) -> Response:
        """Send over a bare socket with Connection: close and return *everything* the server
        wrote, so that a body sent after a HEAD response (which http.client would hide) shows up
        in Response.body."""
        body = kw.pop("body", b"")
        kw["headers"] = {**kw.get("headers", {}), "Connection": "close"}
        if body or method in ("PUT", "POST"):
            kw["headers"]["Content-Length"] = str(len(body))
        target, headers, _ = self.build(method, path, body=body, **kw)
        lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        chunks: list[bytes] = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(data)
            # Read the head, then anything that follows within a short grace period.
            while b"\r\n\r\n" not in b"".join(chunks):
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
            s.settimeout(1.0)
            while True:
                try:
                    c = s.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not c:
                    break
                chunks.append(c)
        raw = b"".join(chunks)
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, _, header_block = head.decode("latin-1").partition("\r\n")
        msg = http.client.parse_headers(io.BytesIO(header_block.encode("latin-1") + b"\r\n\r\n"))
        return Response(int(status_line.split()[1]), msg, rest, raw_head=head)
