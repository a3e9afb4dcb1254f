"""scram_sha256: a PostgreSQL SCRAM-SHA-256 verifier for a password, so only the verifier reaches the server.

The salt is derived from the password and a context string (role@deployment), so the same inputs give the
same verifier and a second run of the playbook changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

ITERATIONS = 4096


def scram_sha256(password: str, context: str) -> str:
    salt = hmac.new(password.encode(), b"punchclock-salt:" + context.encode(), hashlib.sha256).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"scram_sha256": scram_sha256}
