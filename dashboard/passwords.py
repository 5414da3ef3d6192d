"""Password hashes for the dashboard's login: PBKDF2-SHA256, stored as
``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` (the form Django uses)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ITERATIONS = 600_000
SCHEME = "pbkdf2_sha256"


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def is_password_hash(text: str) -> bool:
    """True when ``text`` has the stored form (what ``hash_password`` returns)."""
    parts = text.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit() or int(parts[1]) < 1:
        return False
    try:
        return bool(bytes.fromhex(parts[2])) and len(bytes.fromhex(parts[3])) == 32
    except ValueError:
        return False


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; a malformed hash matches nothing."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        if scheme != SCHEME:
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)
