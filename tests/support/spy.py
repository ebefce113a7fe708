"""Counting calls of a module's function in a test, the real function still answering."""

from __future__ import annotations

from typing import Any

import pytest


class CallCount:
    """``calls``: how many times the wrapped function was called since ``count_calls``."""

    def __init__(self) -> None:
        self.calls = 0


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> CallCount:
    """Replaces ``owner.name`` (for the test) by a wrapper that counts its calls and calls it."""
    real = getattr(owner, name)
    count = CallCount()

    def counting(*args: Any, **kwargs: Any) -> Any:
        count.calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return count
