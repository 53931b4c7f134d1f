"""Test identity provider: RSA and EC signing keys, their JWKS, and signed ID tokens."""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.sluice.test"
AUDIENCE = "sluice"


class SigningKey:
    def __init__(self, kind: str = "RS256", kid: str | None = None):
        self.alg = kind
        self.kid = kid or uuid.uuid4().hex[:12]
        if kind == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": kind})
        self.jwk = jwk

    def token(self, sub: str = "carol", *, iss: str = ISSUER, aud=AUDIENCE, ttl: int = 300,
              nbf: int | None = None, kid: str | None = None, **claims) -> str:
        now = int(time.time())
        body = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "exp": now + ttl, **claims}
        if nbf is not None:
            body["nbf"] = nbf
        return jwt.encode(body, self.private, algorithm=self.alg,
                          headers={"kid": kid or self.kid})


def jwks(*keys: SigningKey) -> bytes:
    return json.dumps({"keys": [k.jwk for k in keys]}).encode()
