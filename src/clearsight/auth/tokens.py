"""API keys: random, recognisable by prefix, stored only as SHA-256.

Keys are 32 random bytes, so a fast hash is as safe as a slow one here and keeps the request path
cheap (a slow hash protects guessable secrets, which these are not)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "cs_"
MIN_KEY_LENGTH = len(KEY_PREFIX) + 20
MAX_TOKEN_LENGTH = 256


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_display_prefix(key: str) -> str:
    """What lists show of a key (enough to recognise it, useless to use it)."""
    return key[:10]


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX) and MIN_KEY_LENGTH <= len(token) <= MAX_TOKEN_LENGTH
