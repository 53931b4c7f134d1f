"""Reference implementations of the S3 checksum algorithms (base64 of the big-endian digest)."""

from __future__ import annotations

import base64
import hashlib
import zlib


def _reflected_table(poly: int, width: int) -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _reflected_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5, 64)


def _reflected_crc(data: bytes, table: list[int], width: int) -> int:
    mask = (1 << width) - 1
    crc = mask
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


def crc32c(data: bytes) -> int:
    return _reflected_crc(data, _CRC32C_TABLE, 32)


def crc64nvme(data: bytes) -> int:
    return _reflected_crc(data, _CRC64NVME_TABLE, 64)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def checksum_b64(algorithm: str, data: bytes) -> str:
    """Value of the x-amz-checksum-<algorithm> header for `data`."""
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return b64((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big"))
    if algorithm == "CRC32C":
        return b64(crc32c(data).to_bytes(4, "big"))
    if algorithm == "CRC64NVME":
        return b64(crc64nvme(data).to_bytes(8, "big"))
    if algorithm == "SHA1":
        return b64(hashlib.sha1(data).digest())
    if algorithm == "SHA256":
        return b64(hashlib.sha256(data).digest())
    raise ValueError(algorithm)


def md5_b64(data: bytes) -> str:
    return b64(hashlib.md5(data).digest())


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]

# Known-answer checks ("123456789"), so a broken reference can never pass silently.
assert crc32c(b"123456789") == 0xE3069283
assert crc64nvme(b"123456789") == 0xAE8B14860A799888
assert checksum_b64("CRC64NVME", b"") == "AAAAAAAAAAA="
