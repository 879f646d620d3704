"""Password hashing (argon2id) and the three roles."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES = ("viewer", "clinician", "admin")  # each role can do what the one before it can
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the user does not exist, so timing does not reveal it.
DUMMY_HASH = _hasher.hash("not-a-real-password")


def role_at_least(role: str | None, needed: str) -> bool:
    """True when ``role`` ranks at or above ``needed`` (viewer < clinician < admin)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)
