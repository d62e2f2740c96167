"""The fake Google token endpoint's half of service-account auth: a key pair, and the JWT check.

A test's service account is a real RSA key pair made here; its JSON (`info`) is what a
deployment's `vertex_credentials` holds, with `token_uri` pointing at the fake. The fake keeps
only the public key and verifies each assertion's RS256 signature, issuer, audience, scope and
times, as Google's token endpoint does, so a wrong key or a tampered JWT is refused.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
PROJECT = "tollgate-test"
CLIENT_EMAIL = f"tollgate@{PROJECT}.iam.gserviceaccount.com"
# google-auth addresses every assertion to Google's token endpoint, whatever token_uri it posts to.
AUDIENCE = "https://oauth2.googleapis.com/token"


class ServiceAccountKey:
    """One service account's RSA key pair (made once per process: 2048-bit keys take a moment)."""

    _shared: ServiceAccountKey | None = None

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self.private_key.public_key()
        self.key_id = secrets.token_hex(20)

    @classmethod
    def shared(cls) -> ServiceAccountKey:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def info(self, token_uri: str, *, project_id: str = PROJECT, client_email: str = CLIENT_EMAIL) -> dict[str, Any]:
        """The service-account JSON Google would let you download, pointing at `token_uri`."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": self.key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def verify(self, assertion: str, *, audience: str = AUDIENCE, client_email: str = CLIENT_EMAIL) -> dict[str, Any]:
        """Return the assertion's claims; raise ValueError naming what is wrong with it."""
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_unb64(header_b64))
            claims = json.loads(_unb64(payload_b64))
            signature = _unb64(signature_b64)
        except ValueError:
            raise ValueError("malformed JWT") from None
        if header.get("alg") != "RS256":
            raise ValueError(f"unexpected alg {header.get('alg')!r}")
        if header.get("kid") not in (None, self.key_id):
            raise ValueError("unknown key id")
        try:
            self.public_key.verify(
                signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise ValueError("Invalid JWT Signature.") from None
        now = time.time()
        if claims.get("iss") != client_email:
            raise ValueError("unknown issuer")
        if claims.get("aud") != audience:
            raise ValueError("wrong audience")
        if SCOPE not in str(claims.get("scope", "")).split():
            raise ValueError("missing the cloud-platform scope")
        if not (claims.get("iat", 0) - 60 <= now < claims.get("exp", 0)):
            raise ValueError("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe")
        return claims


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
