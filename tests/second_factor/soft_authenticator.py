"""A software passkey authenticator for HTTP tests: an EC P-256 key that answers py_webauthn's
options the way a browser and a platform authenticator would (attestation "none").

The browser test drives Chromium's own virtual authenticator instead (tests/e2e).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from dataclasses import field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import bytes_to_base64url

UP, UV, AT = 0x01, 0x04, 0x40


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


@dataclass
class SoftAuthenticator:
    origin: str
    rp_id: str
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    sign_count: int = 0
    #: False: the answers claim no user verification (a key without a PIN).
    verifies_user: bool = True

    def _client_data(self, kind: str, challenge: str, origin: str | None = None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin},
            separators=(",", ":"),
        ).encode()

    def _auth_data(self, flags: int, extra: bytes = b"", rp_id: str | None = None) -> bytes:
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        if self.verifies_user:
            flags |= UV
        return rp_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + extra

    def create(self, options_json: str, *, origin: str | None = None) -> str:
        """The JSON of ``navigator.credentials.create`` for ``options_json``."""
        options = json.loads(options_json)
        numbers = self.key.public_key().public_numbers()
        cose = {
            1: 2,
            3: -7,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        attested = (
            bytes(16)
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cbor2.dumps(cose)
        )
        auth_data = self._auth_data(UP | AT, attested, rp_id=options["rp"]["id"])
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return json.dumps(
            {
                "id": _b64(self.credential_id),
                "rawId": _b64(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": _b64(client_data),
                    "attestationObject": _b64(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def get(self, options_json: str, *, origin: str | None = None, count_up: bool = True) -> str:
        """The JSON of ``navigator.credentials.get`` for ``options_json``."""
        options = json.loads(options_json)
        if count_up:
            self.sign_count += 1
        auth_data = self._auth_data(UP, rp_id=options["rpId"])
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": _b64(self.credential_id),
                "rawId": _b64(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": _b64(client_data),
                    "authenticatorData": _b64(auth_data),
                    "signature": _b64(signature),
                    "userHandle": None,
                },
                "clientExtensionResults": {},
            }
        )
