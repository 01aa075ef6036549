"""Argon2id password hashing, with rehash-on-login when the parameters change; password rules."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MAX_PASSWORD_BYTES", "MIN_PASSWORD_LENGTH", "Passwords", "password_problem"]

MIN_PASSWORD_LENGTH = 8
# No password may be longer, set or tried: Argon2 would hash any length, and a
# login body has no reason to carry more.
MAX_PASSWORD_BYTES = 1024


def password_problem(password: object) -> str | None:
    """Why `password` cannot be set as a password, or None when it can."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be a string of at least {MIN_PASSWORD_LENGTH} characters"
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return f"password must be at most {MAX_PASSWORD_BYTES} bytes"
    if "\x00" in password:
        return "password must not contain NUL"
    return None


class Passwords:
    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the user does not exist, so that an unknown name
        # costs the same time as a wrong password.
        self._dummy = self._hasher.hash("not a real password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
